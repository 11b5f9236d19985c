// The two calls a practable browser client makes: POST the token to the access URL, then open
// the returned websocket. window.relayConnect(accessURL, token) resolves when open; received
// messages collect in window.received.
window.received = [];
window.relayConnect = async function (accessURL, token) {
  const res = await fetch(accessURL, { method: 'POST', headers: { Authorization: token } });
  if (!res.ok) throw new Error('access ' + res.status);
  const { uri } = await res.json();
  const ws = new WebSocket(uri);
  ws.binaryType = 'arraybuffer';
  ws.onmessage = (e) => {
    window.received.push(typeof e.data === 'string' ? e.data : 'binary:' + e.data.byteLength);
  };
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error('websocket error'));
  });
  document.getElementById('status').textContent = 'open';
  window.ws = ws;
  return uri;
};
