/**
 * Hand-built pgoutput v1 messages, field by field as PostgreSQL's docs list them ("Logical
 * Replication Message Formats"), for the decoder's and the capture state machine's unit tests.
 */
export const w = {
  tag: (c: string) => Buffer.from(c, 'latin1'),
  u8: (v: number) => Buffer.from([v]),
  i16: (v: number) => {
    const b = Buffer.alloc(2);
    b.writeInt16BE(v);
    return b;
  },
  i32: (v: number) => {
    const b = Buffer.alloc(4);
    b.writeInt32BE(v);
    return b;
  },
  u32: (v: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v);
    return b;
  },
  u64: (v: bigint) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(v);
    return b;
  },
  i64: (v: bigint) => {
    const b = Buffer.alloc(8);
    b.writeBigInt64BE(v);
    return b;
  },
  str: (s: string) => Buffer.concat([Buffer.from(s, 'utf8'), Buffer.from([0])]),
};

export type Col = ['n'] | ['u'] | ['t', string] | ['b', Buffer];

export function tuple(cols: Col[]): Buffer {
  const parts: Buffer[] = [w.i16(cols.length)];
  for (const c of cols) {
    parts.push(w.tag(c[0]));
    if (c[0] === 't' || c[0] === 'b') {
      const bytes = typeof c[1] === 'string' ? Buffer.from(c[1], 'utf8') : c[1];
      parts.push(w.i32(bytes.length), bytes);
    }
  }
  return Buffer.concat(parts);
}

/** Microseconds since 2000-01-01, pgoutput's timestamp. */
export function pgMicros(date: Date): bigint {
  return BigInt(date.getTime() - Date.UTC(2000, 0, 1)) * 1000n;
}

export interface ColumnSpec {
  name: string;
  typeOid: number;
  key?: boolean;
}

/** Whole messages, for feeding a stream. */
export const pg = {
  begin: (finalLsn: bigint, xid: number, time = new Date('2020-12-01T09:43:00Z')) =>
    Buffer.concat([w.tag('B'), w.u64(finalLsn), w.i64(pgMicros(time)), w.u32(xid)]),
  commit: (commitLsn: bigint, endLsn: bigint, time = new Date('2020-12-01T09:43:00Z')) =>
    Buffer.concat([w.tag('C'), w.u8(0), w.u64(commitLsn), w.u64(endLsn), w.i64(pgMicros(time))]),
  relation: (id: number, schema: string, table: string, columns: ColumnSpec[], identity = 'd') =>
    Buffer.concat([
      w.tag('R'), w.u32(id), w.str(schema), w.str(table), w.tag(identity), w.i16(columns.length),
      ...columns.flatMap((c) => [w.u8(c.key ? 1 : 0), w.str(c.name), w.u32(c.typeOid), w.i32(-1)]),
    ]),
  insert: (relationId: number, cols: Col[]) => Buffer.concat([w.tag('I'), w.u32(relationId), w.tag('N'), tuple(cols)]),
  update: (relationId: number, cols: Col[]) => Buffer.concat([w.tag('U'), w.u32(relationId), w.tag('N'), tuple(cols)]),
  delete: (relationId: number, key: Col[]) => Buffer.concat([w.tag('D'), w.u32(relationId), w.tag('K'), tuple(key)]),
  truncate: (relationIds: number[], options = 0) =>
    Buffer.concat([w.tag('T'), w.i32(relationIds.length), w.u8(options), ...relationIds.map((id) => w.u32(id))]),
};
