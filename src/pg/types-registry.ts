import { join } from 'node:path';
import { loadSql } from './sql-file';
import { arrayDecoder, identity, SCALAR_DECODERS, type Decoder } from './values';

/**
 * Which decoder reads a column's text by its type OID. Built-in OIDs are fixed (pg_type.dat);
 * user types (enums, domains, arrays of them, extension types) are registered from pg_type when
 * a Relation message names an OID the registry does not know.
 */

export type UserTypeKind = 'enum' | 'domain' | 'array' | 'composite' | 'other';

export interface UserTypeInfo {
  kind: UserTypeKind;
  /** domain: the type it constrains. */
  baseOid?: number;
  /** array: its element type. */
  elementOid?: number;
}

/**
 * Built-in array type → element type (pg_type.typelem of category 'A'). Not arrays here, though
 * pg_type files them under 'A': int2vector (22) and oidvector (30), printed space-separated, read
 * as strings. Left out: box[] (1020), whose delimiter is ';', and the catalogs' row types.
 */
export const BUILTIN_ARRAY_ELEMENTS: ReadonlyMap<number, number> = new Map([
  [1000, 16], // bool
  [1001, 17], // bytea
  [1002, 18], // char
  [1003, 19], // name
  [1016, 20], // int8
  [1005, 21], // int2
  [1006, 22], // int2vector
  [1007, 23], // int4
  [1008, 24], // regproc
  [1009, 25], // text
  [1028, 26], // oid
  [1010, 27], // tid
  [1011, 28], // xid
  [1012, 29], // cid
  [1013, 30], // oidvector
  [199, 114], // json
  [143, 142], // xml
  [271, 5069], // xid8
  [1017, 600], // point
  [1018, 601], // lseg
  [1019, 602], // path
  [1027, 604], // polygon
  [629, 628], // line
  [651, 650], // cidr
  [1021, 700], // float4
  [1022, 701], // float8
  [719, 718], // circle
  [775, 774], // macaddr8
  [791, 790], // money
  [1040, 829], // macaddr
  [1041, 869], // inet
  [1034, 1033], // aclitem
  [1014, 1042], // bpchar
  [1015, 1043], // varchar
  [1182, 1082], // date
  [1183, 1083], // time
  [1115, 1114], // timestamp
  [1185, 1184], // timestamptz
  [1187, 1186], // interval
  [1270, 1266], // timetz
  [1561, 1560], // bit
  [1563, 1562], // varbit
  [1231, 1700], // numeric
  [2201, 1790], // refcursor
  [2207, 2202], // regprocedure
  [2208, 2203], // regoper
  [2209, 2204], // regoperator
  [2210, 2205], // regclass
  [2211, 2206], // regtype
  [4090, 4089], // regnamespace
  [4097, 4096], // regrole
  [4192, 4191], // regcollation
  [3735, 3734], // regconfig
  [3770, 3769], // regdictionary
  [1263, 2275], // cstring
  [2949, 2970], // txid_snapshot
  [5039, 5038], // pg_snapshot
  [2951, 2950], // uuid
  [3221, 3220], // pg_lsn
  [3643, 3614], // tsvector
  [3644, 3642], // gtsvector
  [3645, 3615], // tsquery
  [3807, 3802], // jsonb
  [4073, 4072], // jsonpath
  [3905, 3904], // int4range
  [3907, 3906], // numrange
  [3909, 3908], // tsrange
  [3911, 3910], // tstzrange
  [3913, 3912], // daterange
  [3927, 3926], // int8range
  [6150, 4451], // int4multirange
  [6151, 4532], // nummultirange
  [6152, 4533], // tsmultirange
  [6153, 4534], // tstzmultirange
  [6155, 4535], // datemultirange
  [6157, 4536], // int8multirange
]);

/** Every built-in OID the registry answers for without a catalog lookup. */
const BUILTIN_OIDS: ReadonlySet<number> = new Set([
  ...SCALAR_DECODERS.keys(),
  ...BUILTIN_ARRAY_ELEMENTS.keys(),
  ...BUILTIN_ARRAY_ELEMENTS.values(),
  603, // box
  1020, // box[]
  194, // pg_node_tree
]);

/** Resolution depth limit: a domain over an array of a domain… never loops forever. */
const MAX_DEPTH = 8;

/** pg_type rows for the OIDs in `$1`: what `registerFromPgType` needs (sql/user-types.sql). */
export const USER_TYPES_SQL = loadSql(join(__dirname, 'sql'), 'user-types.sql');

export interface PgTypeRow {
  oid: number | string;
  typtype: string;
  typbasetype: number | string;
  typelem: number | string;
  typcategory: string;
}

export class TypeRegistry {
  private readonly user = new Map<number, UserTypeInfo>();
  private readonly decoders = new Map<number, Decoder>();

  /** Known without a lookup: built in, or registered. */
  has(oid: number): boolean {
    return BUILTIN_OIDS.has(oid) || this.user.has(oid);
  }

  register(oid: number, info: UserTypeInfo): void {
    this.user.set(oid, { ...info });
    this.decoders.clear(); // arrays and domains built on this OID may have cached a string decoder
  }

  registerFromPgType(rows: readonly PgTypeRow[]): void {
    registerFromPgType(this, rows);
  }

  /** The element type of an array type, built-in or registered. */
  elementOf(oid: number): number | undefined {
    return BUILTIN_ARRAY_ELEMENTS.get(oid) ?? this.user.get(oid)?.elementOid;
  }

  /** The type a domain constrains, through domains over domains; any other OID is its own base. */
  baseOf(oid: number): number {
    let current = oid;
    for (let depth = 0; depth < MAX_DEPTH; depth++) {
      const info = this.user.get(current);
      if (info?.kind !== 'domain' || !info.baseOid) return current;
      current = info.baseOid;
    }
    return current;
  }

  /** The decoder for `oid` (cached; unknown OIDs read as strings). */
  decoder(oid: number): Decoder {
    let decoder = this.decoders.get(oid);
    if (!decoder) {
      decoder = this.resolve(oid, 0);
      this.decoders.set(oid, decoder);
    }
    return decoder;
  }

  private resolve(oid: number, depth: number): Decoder {
    const scalar = SCALAR_DECODERS.get(oid);
    if (scalar) return scalar;
    if (depth >= MAX_DEPTH) return identity;
    const element = BUILTIN_ARRAY_ELEMENTS.get(oid);
    if (element !== undefined) return arrayDecoder(this.resolve(element, depth + 1));
    const info = this.user.get(oid);
    if (info?.kind === 'domain' && info.baseOid) return this.resolve(info.baseOid, depth + 1);
    if (info?.kind === 'array' && info.elementOid) return arrayDecoder(this.resolve(info.elementOid, depth + 1));
    return identity; // enums, composites, ranges, extension types: the text as printed
  }
}

/** Registers the user types described by USER_TYPES_SQL rows. */
export function registerFromPgType(registry: TypeRegistry, rows: readonly PgTypeRow[]): void {
  for (const row of rows) {
    const oid = Number(row.oid);
    const elementOid = Number(row.typelem);
    if (row.typtype === 'e') registry.register(oid, { kind: 'enum' });
    else if (row.typtype === 'd') registry.register(oid, { kind: 'domain', baseOid: Number(row.typbasetype) });
    else if (row.typtype === 'c') registry.register(oid, { kind: 'composite' });
    else if (row.typcategory === 'A' && elementOid) registry.register(oid, { kind: 'array', elementOid });
    else registry.register(oid, { kind: 'other' });
  }
}
