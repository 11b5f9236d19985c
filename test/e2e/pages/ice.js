// What a web page does with relay's TURN (docs/turn.md, "Using it from a web page"): POST a relay
// token to /ice, give the answer's iceServers to RTCPeerConnection with iceTransportPolicy
// 'relay', and open a data channel. Both peers live on this page and trade their offer, answer
// and candidates directly, so the only path between them is through the TURN server.

// POST /ice with @token; resolves with the parsed answer, rejects with "ice STATUS".
window.fetchIce = async function (iceURL, token) {
  const res = await fetch(iceURL, { method: 'POST', headers: { Authorization: 'Bearer ' + token } });
  if (!res.ok) throw new Error('ice ' + res.status);
  return res.json();
};

// Two RTCPeerConnections configured with @iceServers, relay only; a data channel from a to b,
// b echoes; sends @n messages. Resolves with what a received back, the local candidates' types
// and the selected pair's local candidate type.
window.iceRun = async function (iceServers, n) {
  const config = { iceServers, iceTransportPolicy: 'relay' };
  const a = new RTCPeerConnection(config);
  const b = new RTCPeerConnection(config);
  const types = [];
  const trade = (from, to) => {
    from.onicecandidate = (e) => {
      if (e.candidate) {
        types.push(e.candidate.type);
        to.addIceCandidate(e.candidate);
      }
    };
  };
  trade(a, b);
  trade(b, a);
  b.ondatachannel = (e) => {
    e.channel.onmessage = (m) => e.channel.send('echo:' + m.data);
  };
  const dc = a.createDataChannel('ice');
  const received = [];
  const done = new Promise((resolve) => {
    dc.onmessage = (m) => {
      received.push(m.data);
      if (received.length === n) resolve();
    };
  });
  const open = new Promise((resolve) => { dc.onopen = resolve; });
  await a.setLocalDescription(await a.createOffer());
  await b.setRemoteDescription(a.localDescription);
  await b.setLocalDescription(await b.createAnswer());
  await a.setRemoteDescription(b.localDescription);
  document.getElementById('status').textContent = 'connecting';
  await open;
  document.getElementById('status').textContent = 'open';
  for (let i = 0; i < n; i++) dc.send('m' + i);
  await done;
  let selected = null;
  (await a.getStats()).forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) selected = s.selectedCandidatePairId;
  });
  const stats = await a.getStats();
  const pair = selected && stats.get(selected);
  const local = pair && stats.get(pair.localCandidateId);
  a.close();
  b.close();
  return { received, types, selectedLocal: local ? local.candidateType : null,
    relayProtocol: local ? local.relayProtocol : null };
};
