// A Socket.IO peer for Parley's benchmarks: what a team would build with the
// usual stack. Rooms through the Redis adapter (so several processes share
// them), each message persisted to PostgreSQL in its own transaction with a
// per-room seq (UPDATE ... RETURNING, like Parley's schema), acknowledged after
// COMMIT, then broadcast to the room. No authentication, no guidelines, no
// recovery replay: it does less than Parley, on purpose in Parley's favour.
//
//   PORT=9001 PG="postgres://parley@127.0.0.1:5432/parley" REDIS=redis://127.0.0.1:6379 node server.js
//
// Loopback only: it listens on 127.0.0.1.
'use strict';
const http = require('http');
const { Server } = require('socket.io');
const { createAdapter } = require('@socket.io/redis-adapter');
const { createClient } = require('redis');
const { Pool } = require('pg');

const port = Number(process.env.PORT || 9001);
const pool = new Pool({ connectionString: process.env.PG, max: Number(process.env.PG_POOL || 8) });

async function main() {
  await pool.query(`CREATE TABLE IF NOT EXISTS sio_rooms (id text PRIMARY KEY, last_seq bigint NOT NULL DEFAULT 0);
                    CREATE TABLE IF NOT EXISTS sio_messages (room text, seq bigint, client_msg_id text, body text,
                      created_at timestamptz DEFAULT now(), PRIMARY KEY (room, seq))`);
  const pub = createClient({ url: process.env.REDIS });
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  const server = http.createServer();
  const io = new Server(server, { transports: ['websocket'], serveClient: false });
  io.adapter(createAdapter(pub, sub));
  io.on('connection', (socket) => {
    socket.on('join', async (room, ack) => {
      await pool.query('INSERT INTO sio_rooms (id) VALUES ($1) ON CONFLICT DO NOTHING', [room]);
      const r = await pool.query('SELECT last_seq FROM sio_rooms WHERE id = $1', [room]);
      socket.join(room);
      ack({ last_seq: Number(r.rows[0].last_seq) });
    });
    socket.on('send', async (m, ack) => {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const r = await client.query('UPDATE sio_rooms SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq', [m.room]);
        const seq = Number(r.rows[0].last_seq);
        await client.query('INSERT INTO sio_messages (room, seq, client_msg_id, body) VALUES ($1, $2, $3, $4)',
                           [m.room, seq, m.client_msg_id, m.body]);
        await client.query('COMMIT');
        ack({ seq });
        io.to(m.room).emit('message', { room: m.room, seq, client_msg_id: m.client_msg_id, body: m.body });
      } catch (e) {
        await client.query('ROLLBACK').catch(() => {});
        ack({ error: 'unavailable' });
      } finally {
        client.release();
      }
    });
  });
  server.listen(port, '127.0.0.1', () => console.log(`socket.io peer on 127.0.0.1:${port}`));
  const stop = () => { io.close(); pool.end(); pub.quit(); sub.quit(); setTimeout(() => process.exit(0), 500); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
main().catch((e) => { console.error(e); process.exit(1); });
