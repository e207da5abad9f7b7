import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { describe, it } from 'node:test';
import { freePortForSlowStart } from '../../kit/ports';

const ephemeralLowest = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);

describe('the kit picking a port for a server that starts slowly', () => {
  it('when ports are asked at once, then each is distinct, below the ephemeral range, and a server can listen on it', async () => {
    const ports = await Promise.all(Array.from({ length: 20 }, () => freePortForSlowStart()));
    assert.equal(new Set(ports).size, ports.length, `repeated: ${ports.join(' ')}`);
    for (const port of ports) {
      assert.ok(port >= 20_000 && port < ephemeralLowest, `${port} is not in [20000, ${ephemeralLowest})`);
      const server = createServer().listen(port, '127.0.0.1');
      await once(server, 'listening');
      await new Promise((r) => server.close(r));
    }
  });
});
