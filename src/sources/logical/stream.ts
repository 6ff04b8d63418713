import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { Client } from 'pg';
import { ErrorCodes, PgceError } from '../../errors';
import { logger } from '../../logger';
import { formatLsn } from '../change';
import { quoteIdent, quoteLiteral } from '../../pg/catalog-sql';
import { CONNECT_TIMEOUT_MS } from '../../pg/db';
import { isRetriableDbError } from '../../pg/db-errors';
import { loadSql, withIdentifiers } from '../../pg/sql-file';
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

/** Replication commands take no parameters: the slot, position and publication are placeholders. */
const START_REPLICATION_SQL = loadSql(join(__dirname, 'sql'), 'start-replication.sql');
const CREATE_TEMPORARY_SLOT_SQL = loadSql(join(__dirname, 'sql'), 'create-temporary-slot.sql');

/** Session settings that fix the text form of values (see values.ts). */
export const REPLICATION_SESSION_OPTIONS =
  '-c DateStyle=ISO -c TimeZone=UTC -c IntervalStyle=iso_8601 -c extra_float_digits=3';

/**
 * How long logging in and the server's answer to START_REPLICATION may take together. A server
 * that never answers (a black-holed network) would otherwise hold capture without a word.
 */
export const REPLICATION_START_TIMEOUT_MS = 30_000;

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
  /** `server_version` as the server reported it at login (`15.4 (Debian …)`). */
  private serverVersion?: string;
  private reportedFlush = -1n;
  private stopping = false;
  /** `starting` until the server accepted START_REPLICATION; failures then reject `start()`. */
  private phase: 'new' | 'starting' | 'streaming' | 'ended' = 'new';
  private failStart?: (err: Error) => void;
  private paused = false;
  private messages = 0;
  private clientEnded = false;
  private closing?: Promise<void>;
  private settled = false;
  private readonly endedPromise: Promise<Error | undefined>;
  private resolveEnded!: (err: Error | undefined) => void;

  constructor(private readonly opts: ReplicationStreamOptions) {
    super();
    this.endedPromise = new Promise((resolve) => (this.resolveEnded = resolve));
  }

  /**
   * Connects and starts streaming after `startLsn` (0 = the slot's confirmed position). Resolves
   * once the server accepted START_REPLICATION (CopyBothResponse); rejects with the server's error
   * otherwise, the connection then closed, so a failed attempt never leaves a walsender behind.
   */
  async start(startLsn = 0n): Promise<void> {
    if (this.phase !== 'new') throw new Error('a ReplicationStream starts once');
    this.phase = 'starting';
    const client = new Client({
      connectionString: this.opts.connectionString,
      replication: 'database',
      options: REPLICATION_SESSION_OPTIONS,
      application_name: 'pg-cloudevents',
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      keepAlive: true,
    } as ConstructorParameters<typeof Client>[0]);
    this.client = client;
    const failed = new Promise<never>((_, reject) => {
      this.failStart = reject;
    });
    failed.catch(() => undefined);
    client.on('error', (err) => this.fail(wrap(err, this.phase === 'starting' ? 'could not start replication' : 'replication connection failed')));
    client.on('end', () => {
      this.clientEnded = true;
      this.fail(new PgceError(ErrorCodes.REPLICATION, 'replication connection closed by the server', { retriable: true }));
    });
    const deadline = setTimeout(() => this.fail(new PgceError(ErrorCodes.REPLICATION,
      `no answer to START_REPLICATION within ${REPLICATION_START_TIMEOUT_MS} ms`, { retriable: true })),
    REPLICATION_START_TIMEOUT_MS);
    try {
      await Promise.race([failed, this.open(client, startLsn)]);
    } catch (err) {
      const error = this.stopping ? new PgceError(ErrorCodes.REPLICATION, 'stopped while starting replication', { retriable: true })
        : wrap(err, 'could not start replication');
      this.phase = 'ended';
      await this.close();
      this.settle(this.stopping ? undefined : error);
      throw error;
    } finally {
      clearTimeout(deadline);
      this.failStart = undefined;
    }
    // Ended in the very read that carried the server's acceptance: `ended` says why.
    if (!this.isStreaming()) return;
    this.timer = setInterval(() => this.sendStatus(false), this.opts.statusIntervalMs);
    this.timer.unref();
    this.log.info({ slot: this.opts.slot, publication: this.opts.publication, from: formatLsn(startLsn) }, 'replication started');
  }

  private isStreaming(): boolean {
    return this.phase === 'streaming';
  }

  /** Settles with the error that ended the stream (undefined: `stop()` ended it); never rejects. */
  get ended(): Promise<Error | undefined> {
    return this.endedPromise;
  }

  /** The server sent at least one message after accepting START_REPLICATION: the stream really ran. */
  get streamed(): boolean {
    return this.messages > 0;
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

  /** End the stream with `error` (the connection is closed): the consumer of `end` decides what next. */
  abort(error: Error): void {
    this.fail(error);
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** Report the final position and close; while starting, abandon the start. Safe to call more than once. */
  async stop(): Promise<void> {
    if (this.phase === 'new') {
      this.phase = 'ended';
      this.settle(undefined);
      return;
    }
    // Already ending (a failure is closing the connection): its error stands.
    if (this.phase === 'ended') {
      await this.endedPromise;
      return;
    }
    this.stopping = true;
    if (this.phase === 'starting') {
      this.failStart?.(new Error('stopped'));
      await this.endedPromise;
      return;
    }
    this.sendStatus(false);
    // CopyDone would make the server finish cleanly, but it first drains its send buffer to a
    // client we no longer read; closing the socket is immediate and loses nothing (unacked).
    this.phase = 'ended';
    if (this.timer) clearInterval(this.timer);
    await this.close();
    this.settle(undefined);
  }

  /** Logs in and sends START_REPLICATION; resolves on the server's CopyBothResponse. */
  private async open(client: Client, startLsn: bigint): Promise<void> {
    // The server reports its version at login (ParameterStatus); the Client does not keep it.
    const login = (client as unknown as { connection: EventEmitter }).connection;
    login.on('parameterStatus', (msg: { parameterName: string; parameterValue: string }) => {
      if (msg.parameterName === 'server_version') this.serverVersion = msg.parameterValue;
    });
    await client.connect();
    if (this.opts.temporarySlot) {
      await client.query(withIdentifiers(CREATE_TEMPORARY_SLOT_SQL, { slot: quoteIdent(this.opts.slot) }));
    }
    this.flushed = startLsn;
    const text = withIdentifiers(START_REPLICATION_SQL, {
      slot: quoteIdent(this.opts.slot),
      start_lsn: formatLsn(startLsn),
      publication_names: quoteLiteral(quoteIdent(this.opts.publication)),
      messages: supportsMessages(this.serverVersion) ? ", messages 'true'" : '',
    });
    // pg's Connection emits 'replicationStart' for the server's CopyBothResponse ('W'); the
    // Client ignores it, so listen on the Connection itself. The phase changes synchronously:
    // CopyData may follow in the same read, before any promise continuation runs.
    const connection = (client as unknown as { connection: EventEmitter }).connection;
    const accepted = new Promise<void>((resolve) => connection.once('replicationStart', () => {
      if (this.phase === 'starting') this.phase = 'streaming';
      resolve();
    }));
    client.query(new StartReplication(text, {
      data: (chunk) => this.onCopyData(chunk),
      error: (err) => this.fail(wrap(err, this.phase === 'starting' ? 'could not start replication' : 'replication stream failed')),
      done: () => this.fail(new PgceError(
        ErrorCodes.REPLICATION, 'replication stream ended by the server', { retriable: true })),
    }) as never);
    await accepted;
  }

  private onCopyData(chunk: Buffer): void {
    this.messages++;
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
    if (!client || this.phase !== 'streaming') return;
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

  /**
   * Any failure, from any source: while starting it rejects `start()`; while streaming it ends
   * the stream. Either way the connection is closed: the server keeps an idle walsender (a slot
   * of max_wal_senders) for a connection that failed a replication command but stayed open.
   */
  private fail(err: Error): void {
    if (this.phase === 'starting') {
      this.failStart?.(err);
      return;
    }
    if (this.phase !== 'streaming') return;
    this.phase = 'ended';
    if (this.timer) clearInterval(this.timer);
    // Closing the connection ourselves makes pg report "Connection terminated": not a failure.
    const error = this.stopping ? undefined : err;
    if (error) this.log.warn({ err: { message: error.message, code: (error as PgceError).code } }, 'replication stream ended');
    void this.close().then(() => this.settle(error));
  }

  /** Closes the connection once; resolves when it is closed (at once when the server closed it). */
  private close(): Promise<void> {
    const client = this.client;
    if (!client || this.clientEnded) return Promise.resolve();
    this.closing ??= closeClient(client);
    return this.closing;
  }

  /** Ends the stream's life once: `ended` settles and 'end' is emitted. */
  private settle(error: Error | undefined): void {
    if (this.settled) return;
    this.settled = true;
    this.resolveEnded(error);
    this.emit('end', error);
  }
}

/** Ends the connection, bounded: a dead socket is destroyed rather than waited for. */
async function closeClient(client: Client): Promise<void> {
  const closed = new Promise<void>((resolve) => {
    client.once('end', () => resolve());
    setTimeout(resolve, 2000).unref();
  });
  await client.end().catch(() => undefined);
  await closed;
}

function socketOf(client: Client): { pause(): void; resume(): void } | undefined {
  return (client as unknown as { connection?: { stream?: { pause(): void; resume(): void } } }).connection?.stream;
}

function wrap(err: unknown, what: string): PgceError {
  if (err instanceof PgceError) return err;
  // Invalidated, dropped, or undecodable (publication dropped): final, named, PostgreSQL's detail kept.
  const lost = slotStreamError(err);
  if (lost) return lost;
  const e = err as { message?: string; code?: string; detail?: string };
  const retriable = isRetriableDbError(err, 'replication');
  // PostgreSQL's detail says why (e.g. "This slot has been invalidated because it exceeded ...").
  const detail = e.detail ? ` (${e.detail})` : '';
  return new PgceError(ErrorCodes.REPLICATION, `${what}: ${e.message ?? String(err)}${detail}`, {
    retriable, cause: err, detail: e.code ? { sqlstate: e.code } : undefined,
  });
}

/**
 * pgoutput's `messages` option (logical messages in the stream: application events) is new in
 * PostgreSQL 14; 13 refuses it, so capture runs there without application events (check warns).
 * An unreadable version is taken as recent: the server's answer then says what is wrong.
 */
export function supportsMessages(serverVersion: string | undefined): boolean {
  const major = serverVersion === undefined ? NaN : parseInt(serverVersion, 10);
  return Number.isNaN(major) || major >= 14;
}
