// A WebRTC peer that signals through relay's /signal/{realm}: POST the access URL with the
// token, open the websocket, build an RTCPeerConnection from the welcome's iceServers, and
// exchange offer/answer/candidate with the other peer. window.state collects what happened.
'use strict';
window.state = { log: [], open: false, echoed: null, errors: [] };

function note(s) {
  window.state.log.push(s);
  document.getElementById('status').textContent = s;
}

// @opts: { accessUrl, token, other, caller, relayOnly }
window.startPeer = async function startPeer(opts) {
  const res = await fetch(opts.accessUrl, { method: 'POST', headers: { Authorization: opts.token } });
  if (res.status !== 200) throw new Error(`access ${res.status}`);
  const { uri } = await res.json();
  const ws = new WebSocket(uri);
  window.ws = ws;
  const send = (type, data) => ws.send(JSON.stringify({ to: opts.other, type, data }));
  let pc = null;
  const pending = [];
  const startCall = async () => {
    const dc = pc.createDataChannel('test');
    dc.onopen = () => { window.state.open = true; note('open'); dc.send('ping'); };
    dc.onmessage = (e) => { window.state.echoed = e.data; note(`got ${e.data}`); };
    await pc.setLocalDescription(await pc.createOffer());
    send('offer', pc.localDescription.toJSON());
  };
  ws.onmessage = async (ev) => {
    const m = JSON.parse(ev.data);
    note(`ws ${m.type}`);
    if (m.type === 'welcome') {
      window.state.iceServers = m.iceServers;
      pc = new RTCPeerConnection({ iceServers: m.iceServers, iceTransportPolicy: opts.relayOnly ? 'relay' : 'all' });
      window.pc = pc;
      pc.onicecandidate = (e) => { if (e.candidate) send('candidate', e.candidate.toJSON()); };
      pc.ondatachannel = (e) => {
        e.channel.onopen = () => { window.state.open = true; note('open'); };
        e.channel.onmessage = (me) => e.channel.send(`pong:${me.data}`);
      };
      if (opts.caller && m.peers.includes(opts.other)) await startCall();
    } else if (m.type === 'join' && opts.caller && m.from === opts.other) {
      await startCall();
    } else if (m.type === 'offer') {
      await pc.setRemoteDescription(m.data);
      await pc.setLocalDescription(await pc.createAnswer());
      send('answer', pc.localDescription.toJSON());
      for (const c of pending.splice(0)) await pc.addIceCandidate(c);
    } else if (m.type === 'answer') {
      await pc.setRemoteDescription(m.data);
      for (const c of pending.splice(0)) await pc.addIceCandidate(c);
    } else if (m.type === 'candidate') {
      if (pc.remoteDescription) await pc.addIceCandidate(m.data); else pending.push(m.data);
    } else if (m.type === 'error') {
      window.state.errors.push(m);
    }
  };
  await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = () => reject(new Error('websocket error')); });
  return uri;
};

// The candidate types of the selected pair: { local, remote } ('host', 'relay', ...).
window.selectedPair = async function selectedPair() {
  const stats = await window.pc.getStats();
  let pair = null;
  stats.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
  });
  if (!pair) stats.forEach((s) => { if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s; });
  if (!pair) return null;
  const l = stats.get(pair.localCandidateId);
  const rc = stats.get(pair.remoteCandidateId);
  return { local: l && l.candidateType, remote: rc && rc.candidateType, address: l && (l.address || l.ip) };
};
