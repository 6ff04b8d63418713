// The A/B loop's receiver (bench/ab/drain.js): counts distinct ids (ce-id header, or "id":" members of a body), answers 202.
const http = require('http');
const ids = new Set(); let first = 0, last = 0;
const srv = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const now = Date.now();
    if (req.headers['ce-id']) ids.add(req.headers['ce-id']);
    else { const b = Buffer.concat(chunks).toString(); let i = 0; for (;;) { i = b.indexOf('"id":"', i); if (i < 0) break; const j = b.indexOf('"', i + 6); ids.add(b.slice(i + 6, j)); i = j; } }
    if (!first) first = now; last = now;
    res.writeHead(202); res.end();
  });
});
srv.keepAliveTimeout = 60000;
srv.listen(0, '127.0.0.1', () => process.send({ port: srv.address().port }));
process.on('message', (m) => { if (m === 'stats') process.send({ unique: ids.size, first, last }); if (m === 'close') process.exit(0); });
