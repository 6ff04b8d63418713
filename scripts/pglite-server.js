#!/usr/bin/env node
'use strict';
/**
 * The embedded PostgreSQL of `make run` where no PostgreSQL server is at hand: PGlite (PostgreSQL
 * compiled to WebAssembly, running inside this process) served on a loopback port with the
 * PostgreSQL wire protocol, so pg-cloudevents connects to it unchanged through DATABASE_URL.
 *
 *   node scripts/pglite-server.js [--data-dir DIR] [--host 127.0.0.1] [--port 0]
 *
 * Once it accepts connections it prints one JSON line on stdout: {"url", "host", "port", "dataDir"}.
 * Without --data-dir the database lives in memory. SIGINT/SIGTERM close PGlite (the data directory
 * stays consistent) and exit 0. Logs go to stderr.
 *
 * PGlite has a single backend session, which every client connection shares. This server takes
 * turns between connections instead of the multiplexer of @electric-sql/pglite-socket, because
 * that one (0.2.17) hands a NOTIFY to the connection whose statement committed, never to the one
 * that ran LISTEN, and lets an extended-protocol exchange (Parse … Sync) of one connection be
 * interleaved with another's when a client's messages arrive in several reads.
 * - A connection holds the session from its first message until PostgreSQL reports it idle again
 *   (ReadyForQuery 'I'); the others wait, first come first served. A transaction therefore runs
 *   alone, which is serialisable by construction.
 * - A NotificationResponse is taken out of the committing connection's answer and written to every
 *   connection that ran LISTEN on its channel.
 * What sharing one session still means (README "Embedded demo database"):
 * - session state is common to all connections: SET, session advisory locks (pg_try_advisory_lock
 *   succeeds on every connection; leader election cannot tell replicas apart), prepared statement
 *   names, temporary tables, pg_backend_pid();
 * - a connection that keeps a transaction open while it waits for another connection's answer waits
 *   forever (logged after HELD_WARNING_MS);
 * - wal_level is replica: no logical replication slot, so only `capture.mode: trigger` works.
 */
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { parseArgs } = require('node:util');

/** First words of the messages that carry no type byte (protocol 3.0 §55.7). */
const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;
const HELD_WARNING_MS = 10_000;

const LISTEN_SQL = /^\s*(UNLISTEN|LISTEN)\s+(\*|"(?:[^"]|"")+"|[A-Za-z_][\w$]*)\s*$/i;

function log(level, msg, extra = {}) {
  process.stderr.write(`${JSON.stringify({ level, name: 'pglite-server', msg, ...extra })}\n`);
}

/** A simple-protocol Query message ('Q'), for the server's own statements. */
function queryMessage(sql) {
  const text = Buffer.from(`${sql}\0`, 'utf8');
  const head = Buffer.alloc(5);
  head.write('Q', 0, 'latin1');
  head.writeInt32BE(4 + text.length, 1);
  return Buffer.concat([head, text]);
}
const SYNC_MESSAGE = Buffer.from([0x53, 0, 0, 0, 4]);

function quoteIdent(name) {
  return `"${name.replace(/"/g, '""')}"`;
}

/** The channel a LISTEN names, as PostgreSQL stores it (unquoted names fold to lower case). */
function channelName(word) {
  if (word.startsWith('"')) return word.slice(1, -1).replace(/""/g, '"');
  return word.toLowerCase();
}

/** [verb, channel] of each LISTEN/UNLISTEN in a statement text (naive split on ';'). */
function listenStatements(sql) {
  const found = [];
  for (const part of sql.split(';')) {
    const m = LISTEN_SQL.exec(part);
    if (m) found.push([m[1].toUpperCase(), m[2] === '*' ? '*' : channelName(m[2])]);
  }
  return found;
}

/** The SQL text of a Query ('Q') or Parse ('P') message, else undefined. */
function statementText(msg) {
  const type = String.fromCharCode(msg[0]);
  if (type === 'Q') return msg.toString('utf8', 5, msg.length - 1);
  if (type === 'P') {
    const nameEnd = msg.indexOf(0, 5);
    return msg.toString('utf8', nameEnd + 1, msg.indexOf(0, nameEnd + 1));
  }
  return undefined;
}

class Connection {
  constructor(id, socket) {
    this.id = id;
    this.socket = socket;
    this.buffer = Buffer.alloc(0);
    this.started = false;
    this.closed = false;
    /** Channels this connection ran LISTEN on. */
    this.channels = new Set();
  }

  write(bytes) {
    if (!this.closed && bytes.length > 0) this.socket.write(bytes);
  }

  /** Complete messages taken from the buffer; the first one has no type byte. */
  *messages() {
    for (;;) {
      if (!this.started) {
        if (this.buffer.length < 8) return;
        const len = this.buffer.readInt32BE(0);
        if (this.buffer.length < len) return;
        yield { untyped: true, code: this.buffer.readInt32BE(4), bytes: this.take(len) };
      } else {
        if (this.buffer.length < 5) return;
        const len = 1 + this.buffer.readInt32BE(1);
        if (this.buffer.length < len) return;
        yield { untyped: false, bytes: this.take(len) };
      }
    }
  }

  take(len) {
    const bytes = this.buffer.subarray(0, len);
    this.buffer = this.buffer.subarray(len);
    return Buffer.from(bytes);
  }
}

/** Takes turns between connections on PGlite's one session (see the header). */
class SessionScheduler {
  constructor(db) {
    this.db = db;
    this.waiting = [];
    /** The connection that holds the session (mid-transaction or mid-exchange), if any. */
    this.owner = undefined;
    this.ownerSince = 0;
    this.running = false;
    this.connections = new Set();
    /** Channels UNLISTENed by one connection that others still listen on: LISTEN again when idle. */
    this.relisten = new Set();
  }

  submit(conn, bytes) {
    this.waiting.push({ conn, bytes });
    this.pump();
  }

  /** After a connection is gone: end what it left open on the session. */
  release(conn) {
    this.connections.delete(conn);
    this.waiting = this.waiting.filter((j) => j.conn !== conn);
    if (this.owner === conn) this.waiting.unshift({ conn, cleanup: true });
    this.pump();
  }

  async pump() {
    if (this.running) return;
    this.running = true;
    try {
      for (;;) {
        const i = this.owner ? this.waiting.findIndex((j) => j.conn === this.owner) : 0;
        if (this.waiting.length === 0 || i < 0) break;
        const [job] = this.waiting.splice(i, 1);
        await (job.cleanup ? this.cleanup(job.conn) : this.run(job));
        if (!this.owner && this.relisten.size > 0) await this.listenAgain();
      }
      if (this.owner && this.waiting.length > 0) this.warnIfStillHeld(this.owner, this.ownerSince);
    } catch (err) {
      log('error', 'session scheduler failed', { err: String(err && err.stack || err) });
    } finally {
      this.running = false;
    }
  }

  async run({ conn, bytes }) {
    if (this.owner !== conn) {
      this.owner = conn;
      this.ownerSince = Date.now();
    }
    const text = statementText(bytes);
    const statements = text === undefined ? [] : listenStatements(text);
    for (const [verb, channel] of statements) this.noteListen(conn, verb, channel);
    let out;
    try {
      out = Buffer.from(await this.db.runExclusive(() => this.db.execProtocolRaw(bytes)));
    } catch (err) {
      log('error', 'PGlite failed on a message; closing that connection', { conn: conn.id, err: String(err) });
      conn.socket.destroy();
      return;
    }
    conn.write(this.route(conn, out));
  }

  noteListen(conn, verb, channel) {
    if (verb === 'LISTEN') {
      conn.channels.add(channel);
      return;
    }
    const dropped = channel === '*' ? [...conn.channels] : [channel];
    for (const ch of dropped) {
      conn.channels.delete(ch);
      if ([...this.connections].some((c) => c !== conn && c.channels.has(ch))) this.relisten.add(ch);
    }
  }

  /**
   * The answer for `conn` without its NotificationResponses, which go to their listeners instead;
   * updates the session's owner from the last ReadyForQuery.
   */
  route(conn, out) {
    const keep = [];
    let at = 0;
    while (at + 5 <= out.length) {
      const type = String.fromCharCode(out[at]);
      const end = at + 1 + out.readInt32BE(at + 1);
      const frame = out.subarray(at, end);
      if (type === 'A') {
        const chanStart = at + 9;
        const channel = out.toString('utf8', chanStart, out.indexOf(0, chanStart));
        for (const c of this.connections) if (c.channels.has(channel)) c === conn ? keep.push(frame) : c.write(Buffer.from(frame));
      } else {
        if (type === 'Z') this.owner = out[at + 5] === 0x49 /* 'I' */ ? undefined : conn;
        keep.push(frame);
      }
      at = end;
    }
    return Buffer.concat(keep);
  }

  /** The connection went away holding the session: finish its exchange and roll back its transaction. */
  async cleanup(conn) {
    if (this.owner !== conn) return;
    await this.db.runExclusive(async () => {
      await this.db.execProtocolRaw(SYNC_MESSAGE);
      if (this.db.isInTransaction()) await this.db.execProtocolRaw(queryMessage('ROLLBACK'));
    });
    log('info', 'a connection closed inside a transaction: rolled back', { conn: conn.id });
    this.owner = undefined;
  }

  async listenAgain() {
    const channels = [...this.relisten];
    this.relisten.clear();
    await this.db.runExclusive(async () => {
      for (const ch of channels) await this.db.execProtocolRaw(queryMessage(`LISTEN ${quoteIdent(ch)}`));
    });
  }

  warnIfStillHeld(owner, since) {
    const timer = setTimeout(() => {
      if (this.owner === owner && this.ownerSince === since && this.waiting.length > 0) {
        log('warn', 'one connection has held the session (an open transaction) while others wait; ' +
          'a client that waits for another connection inside a transaction never finishes on the embedded database',
        { conn: owner.id, heldMs: Date.now() - since, waiting: this.waiting.length });
      }
    }, HELD_WARNING_MS);
    timer.unref();
  }
}

/** Refuses a second server on one data directory: two PGlite writers would corrupt it. */
function lockDataDir(dataDir) {
  const pidFile = `${path.resolve(dataDir)}.pid`;
  fs.mkdirSync(path.dirname(pidFile), { recursive: true });
  for (;;) {
    try {
      fs.writeFileSync(pidFile, String(process.pid), { flag: 'wx' });
      return () => fs.rmSync(pidFile, { force: true });
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      const pid = Number(fs.readFileSync(pidFile, 'utf8'));
      if (pid > 0 && isAlive(pid)) throw new Error(`data directory ${dataDir} is in use by process ${pid} (${pidFile})`);
      fs.rmSync(pidFile, { force: true });
    }
  }
}

function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

async function main() {
  const { values } = parseArgs({
    options: { 'data-dir': { type: 'string' }, host: { type: 'string', default: '127.0.0.1' }, port: { type: 'string', default: '0' } },
  });
  const dataDir = values['data-dir'];
  const unlock = dataDir ? lockDataDir(dataDir) : () => {};
  // Loaded here so that `--help`-less misuse and a missing package both fail with a plain message.
  let PGlite;
  try {
    ({ PGlite } = require('@electric-sql/pglite'));
  } catch (err) {
    unlock();
    throw new Error(`@electric-sql/pglite is not installed (npm ci installs it): ${err.message}`);
  }
  const db = await PGlite.create(dataDir ? { dataDir } : {});
  const scheduler = new SessionScheduler(db);
  let nextId = 1;
  const server = net.createServer((socket) => {
    const conn = new Connection(nextId++, socket);
    scheduler.connections.add(conn);
    socket.setNoDelay(true);
    const gone = () => {
      if (conn.closed) return;
      conn.closed = true;
      scheduler.release(conn);
    };
    socket.on('close', gone);
    socket.on('error', gone);
    socket.on('data', (chunk) => {
      conn.buffer = Buffer.concat([conn.buffer, chunk]);
      for (const msg of conn.messages()) {
        if (msg.untyped) {
          if (msg.code === SSL_REQUEST || msg.code === GSSENC_REQUEST) {
            socket.write('N');
            continue;
          }
          if (msg.code === CANCEL_REQUEST) {
            // A statement cannot be interrupted here (one thread); PostgreSQL closes these connections too.
            socket.end();
            return;
          }
          conn.started = true;
        } else if (msg.bytes[0] === 0x58 /* 'X' Terminate */) {
          // Not passed on: it would end the one session every connection shares.
          socket.end();
          return;
        }
        scheduler.submit(conn, msg.bytes);
      }
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(values.port), values.host, resolve);
  });
  const { port } = server.address();
  const host = values.host;
  const url = `postgres://postgres@${host.includes(':') ? `[${host}]` : host}:${port}/postgres`;
  process.stdout.write(`${JSON.stringify({ url, host, port, dataDir: dataDir ? path.resolve(dataDir) : null })}\n`);
  log('info', 'embedded PostgreSQL (PGlite) accepting connections', { url, dataDir: dataDir ?? 'memory' });

  let stopping = false;
  const stop = async (signal) => {
    if (stopping) return;
    stopping = true;
    server.close();
    for (const c of scheduler.connections) c.socket.destroy();
    try {
      await db.close();
    } finally {
      unlock();
      log('info', 'stopped', { signal });
      process.exit(0);
    }
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((err) => {
  log('error', String(err && err.message || err));
  process.exit(1);
});
