import { EventEmitter } from 'node:events';
import { Client } from 'pg';
import { ErrorCodes, PgceError } from '../errors';
import { logger } from '../logger';
import { formatLsn } from './change';
import { quoteIdent, quoteLiteral } from './catalog-sql';
import { slotStreamError } from './slot-guard';
import { parseReplicationMessage, standbyStatusUpdate } from './replication-messages';

/**
 * One logical replication stream on pg's replication connection (PostgreSQL docs, "Streaming
 * Replication Protocol"). We own acknowledgement: the flush LSN we report only ever moves to what
 * the pipeline called `acknowledge` with — never to what was merely received — so a crash replays
 * everything not yet delivered. Keepalives are answered here, from the socket callback, so a slow
 * sink never lets `wal_sender_timeout` kill the stream; a timer also reports status on its own
 * because while reading is paused (backpressure) we cannot see the server's requests.
 */

/** Session settings that fix the text form of values (see values.ts). */
export const REPLICATION_SESSION_OPTIONS =
  '-c DateStyle=ISO -c TimeZone=UTC -c IntervalStyle=iso_8601 -c extra_float_digits=3';

export interface ReplicationStreamOptions {
  connectionString: string;
  slot: string;
  publication: string;
  statusIntervalMs: number;
  /** A temporary slot is created for this stream and vanishes with it (`tail`). */
  temporarySlot?: boolean;
  /** Called synchronously for every XLogData payload; must copy what it keeps. */
  onData(data: Buffer, walStart: bigint, walEnd: bigint): void;
  /** A keepalive: the server has sent everything before `walEnd`. Called synchronously, in stream order. */
  onKeepalive?(walEnd: bigint): void;
  /** The server's current WAL end, from keepalives and XLogData headers (for lag). */
  onWalEnd?(walEnd: bigint): void;
}

export interface ReplicationStreamEvents {
  /** The stream ended: `error` is set unless `stop()` ended it. */
  end: [error?: Error];
  acknowledged: [lsn: bigint];
}

class StartReplication {
  readonly text: string;
  constructor(
    text: string,
    private readonly handlers: {
      data(chunk: Buffer): void;
      error(err: Error): void;
      done(): void;
    },
  ) {
    this.text = text;
  }
  submit(connection: { query(text: string): void }): void {
    connection.query(this.text);
  }
  handleCopyData(msg: { chunk: Buffer }): void {
    this.handlers.data(msg.chunk);
  }
  handleError(err: Error): void {
    this.handlers.error(err);
  }
  handleReadyForQuery(): void {
    this.handlers.done();
  }
  handleCommandComplete(): void {}
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyInResponse(): void {}
}

export class ReplicationStream extends EventEmitter<ReplicationStreamEvents> {
  private readonly log = logger('capture');
  private client?: Client;
  private timer?: NodeJS.Timeout;
  private received = 0n;
  private flushed = 0n;
  private reportedFlush = -1n;
  private stopping = false;
  private ended = false;
  private paused = false;

  constructor(private readonly opts: ReplicationStreamOptions) {
    super();
  }

  /** Connects and starts streaming after `startLsn` (0 = the slot's confirmed position). */
  async start(startLsn = 0n): Promise<void> {
    const client = new Client({
      connectionString: this.opts.connectionString,
      replication: 'database',
      options: REPLICATION_SESSION_OPTIONS,
      application_name: 'pg-cloudevents',
    } as ConstructorParameters<typeof Client>[0]);
    this.client = client;
    client.on('error', (err) => this.finish(wrap(err, 'replication connection failed')));
    client.on('end', () => this.finish(this.stopping ? undefined : new PgceError(
      ErrorCodes.REPLICATION, 'replication connection closed by the server', { retriable: true })));
    try {
      await client.connect();
      if (this.opts.temporarySlot) {
        await client.query(`CREATE_REPLICATION_SLOT ${quoteIdent(this.opts.slot)} TEMPORARY LOGICAL pgoutput NOEXPORT_SNAPSHOT`);
      }
    } catch (err) {
      this.ended = true;
      await client.end().catch(() => undefined);
      throw wrap(err, 'could not open the replication connection');
    }
    this.flushed = startLsn;
    const text =
      `START_REPLICATION SLOT ${quoteIdent(this.opts.slot)} LOGICAL ${formatLsn(startLsn)} ` +
      `(proto_version '1', publication_names ${quoteLiteral(quoteIdent(this.opts.publication))}, messages 'true')`;
    client.query(new StartReplication(text, {
      data: (chunk) => this.onCopyData(chunk),
      error: (err) => this.finish(wrap(err, 'replication stream failed')),
      done: () => this.finish(this.stopping ? undefined : new PgceError(
        ErrorCodes.REPLICATION, 'replication stream ended by the server', { retriable: true })),
    }) as never);
    this.timer = setInterval(() => this.sendStatus(false), this.opts.statusIntervalMs);
    this.timer.unref();
    this.log.info({ slot: this.opts.slot, publication: this.opts.publication, from: formatLsn(startLsn) }, 'replication started');
  }

  /** Everything at or below `lsn` is delivered: it may be confirmed to the slot. */
  acknowledge(lsn: bigint): void {
    if (lsn <= this.flushed) return;
    this.flushed = lsn;
  }

  /** Send the current position now (used after a commit is fully delivered, and on shutdown). */
  flush(): void {
    if (this.flushed !== this.reportedFlush) this.sendStatus(false);
  }

  get acknowledgedLsn(): bigint {
    return this.flushed;
  }

  get receivedLsn(): bigint {
    return this.received;
  }

  /** Backpressure: stop reading from the socket. Status updates keep going out on the timer. */
  pause(): void {
    if (this.paused || !this.client) return;
    this.paused = true;
    socketOf(this.client)?.pause();
  }

  resume(): void {
    if (!this.paused || !this.client) return;
    this.paused = false;
    socketOf(this.client)?.resume();
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** Report the final position and close. Safe to call more than once. */
  async stop(): Promise<void> {
    if (this.ended) return;
    this.stopping = true;
    this.sendStatus(false);
    const client = this.client;
    if (client) {
      const closed = new Promise<void>((resolve) => client.once('end', () => resolve()));
      // CopyDone would make the server finish cleanly, but it first drains its send buffer to a
      // client we no longer read; closing the socket is immediate and loses nothing (unacked).
      await client.end().catch(() => undefined);
      await Promise.race([closed, new Promise((r) => setTimeout(r, 2000).unref())]);
    }
    this.finish(undefined);
  }

  private onCopyData(chunk: Buffer): void {
    let msg;
    try {
      msg = parseReplicationMessage(chunk);
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    if (msg.kind === 'keepalive') {
      if (msg.walEnd > this.received) this.received = msg.walEnd;
      this.opts.onWalEnd?.(msg.walEnd);
      if (msg.replyRequested) this.sendStatus(false);
      try {
        this.opts.onKeepalive?.(msg.walEnd);
      } catch (err) {
        this.fail(err as Error);
      }
      return;
    }
    if (msg.walStart > this.received) this.received = msg.walStart;
    this.opts.onWalEnd?.(msg.walEnd);
    try {
      this.opts.onData(msg.data, msg.walStart, msg.walEnd);
    } catch (err) {
      this.fail(err as Error);
    }
  }

  private sendStatus(replyRequested: boolean): void {
    const client = this.client;
    if (!client || this.ended) return;
    const flush = this.flushed;
    // `write` is what we hold in memory; it never passes below flush.
    const write = this.received > flush ? this.received : flush;
    const conn = (client as unknown as { connection: { sendCopyFromChunk(b: Buffer): void } }).connection;
    try {
      conn.sendCopyFromChunk(standbyStatusUpdate(write, flush, flush, replyRequested));
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    if (flush !== this.reportedFlush) {
      this.reportedFlush = flush;
      this.emit('acknowledged', flush);
    }
  }

  private fail(err: Error): void {
    this.finish(err);
    this.client?.end().catch(() => undefined);
  }

  private finish(error: Error | undefined): void {
    if (this.ended) return;
    this.ended = true;
    // Closing the connection ourselves makes pg report "Connection terminated": not a failure.
    if (this.stopping) error = undefined;
    if (this.timer) clearInterval(this.timer);
    if (error) this.log.warn({ err: { message: error.message, code: (error as PgceError).code } }, 'replication stream ended');
    this.emit('end', error);
  }
}

function socketOf(client: Client): { pause(): void; resume(): void } | undefined {
  return (client as unknown as { connection?: { stream?: { pause(): void; resume(): void } } }).connection?.stream;
}

function wrap(err: unknown, what: string): PgceError {
  if (err instanceof PgceError) return err;
  // Invalidated, dropped, or undecodable (publication dropped): final, named, PostgreSQL's detail kept.
  const lost = slotStreamError(err);
  if (lost) return lost;
  const e = err as { message?: string; code?: string };
  // 55006 object_in_use: the slot is active elsewhere (another replica). 42704: slot missing.
  const retriable = e.code !== '42704' && e.code !== '28000' && e.code !== '28P01' && e.code !== '3D000';
  return new PgceError(ErrorCodes.REPLICATION, `${what}: ${e.message ?? String(err)}`, { retriable, cause: err });
}
