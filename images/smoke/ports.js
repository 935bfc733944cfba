// Prints free loopback ports for the smoke test: `node ports.js N` gives N single ports (free for
// TCP and UDP), then the first port of a free block of 100 UDP ports (rtpengine's media range),
// and two free blocks of 4 (sipp's media ports, which it binds with the ones above).
import dgram from 'node:dgram';
import net from 'node:net';
import process from 'node:process';

const udpFree = (port) =>
  new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    s.once('error', () => resolve(false));
    s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
const tcpAny = () =>
  new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => resolve(srv));
  });

const count = Number(process.argv[2] ?? 1);
const held = [];
const singles = [];
while (singles.length < count) {
  const srv = await tcpAny();
  held.push(srv);
  const port = srv.address().port;
  if (await udpFree(port)) singles.push(port);
}
for (const srv of held) srv.close();

// Blocks below the ephemeral range (32768+), so bind(0) elsewhere never lands in them.
async function block(size, taken) {
  for (let attempt = 0; attempt < 200; attempt++) {
    const first = 20000 + 2 * Math.floor(Math.random() * 6000);
    const ports = Array.from({ length: size }, (_, i) => first + i);
    if (ports.some((p) => taken.has(p) || singles.includes(p))) continue;
    if ((await Promise.all(ports.map(udpFree))).every(Boolean)) {
      ports.forEach((p) => taken.add(p));
      return first;
    }
  }
  throw new Error(`no free block of ${size} ports`);
}
const taken = new Set();
process.stdout.write(`${[...singles, await block(100, taken), await block(4, taken), await block(4, taken)].join(' ')}\n`);
