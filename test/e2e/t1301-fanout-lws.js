// t1301: t1300's fan-out tests again with the plain libwebsockets write path (--write-path lws):
// lws_write() from the writable callback, lws's framing and close handshake.
'use strict';
process.env.WRITE_PATH = 'lws';
require('./t1300-fanout.js');
