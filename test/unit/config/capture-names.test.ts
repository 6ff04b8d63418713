import { expect } from 'chai';
import { defaultCaptureName, SLOT_NAME } from '../../../src/config/capture-names';
import { loadConfig } from '../../../src/config/load';
import { configError, expectProblem, MINIMAL_ENV, TempFiles } from './helpers';

describe('config/capture-names: slot and publication names', () => {
  describe('defaultCaptureName: pg_cloudevents_<database>', () => {
    it('a database name that is already a valid slot name is used as it is', () => {
      expect(defaultCaptureName('shop')).to.equal('pg_cloudevents_shop');
      expect(defaultCaptureName('app_2')).to.equal('pg_cloudevents_app_2');
      // 15 + 48 = 63 bytes: still fits.
      expect(defaultCaptureName('d'.repeat(48))).to.equal(`pg_cloudevents_${'d'.repeat(48)}`);
    });

    it('other characters become _ and a hash of the full name keeps names that read alike apart', () => {
      const names = ['My-Db', 'my_db', 'my-db', 'MY_DB', 'my.db', 'mý_db'].map(defaultCaptureName);
      expect(names[0]).to.match(/^pg_cloudevents_my_db_[0-9a-f]{8}$/);
      expect(names[1]).to.equal('pg_cloudevents_my_db');
      expect(new Set(names).size).to.equal(names.length);
      for (const n of names) expect(n).to.match(SLOT_NAME);
    });

    it('is stable: the same database always gets the same name', () => {
      expect(defaultCaptureName('My-Db')).to.equal(defaultCaptureName('My-Db'));
    });

    it('a long name is cut to 63 bytes, and names alike at the start still differ', () => {
      const long = 'analytics_warehouse_production_europe_west_replica_'; // 52 characters
      const a = defaultCaptureName(`${long}one`);
      const b = defaultCaptureName(`${long}two`);
      expect(a).to.not.equal(b);
      for (const n of [a, b, defaultCaptureName('x'.repeat(63)), defaultCaptureName('é'.repeat(31))]) {
        expect(Buffer.byteLength(n), n).to.be.at.most(63);
        expect(n).to.match(SLOT_NAME);
      }
      expect(a.startsWith(`pg_cloudevents_${long.slice(0, 39)}_`)).to.equal(true);
    });
  });

  describe('loading: PG_CLOUDEVENTS_SLOT / PG_CLOUDEVENTS_PUBLICATION win over the file', () => {
    let temp: TempFiles;
    beforeEach(() => (temp = new TempFiles()));
    afterEach(() => temp.cleanup());

    it('without either, both are left to the per-database default (resolved once connected)', () => {
      const { capture } = loadConfig({ env: { ...MINIMAL_ENV } });
      expect([capture.slot, capture.publication]).to.deep.equal(['', '']);
      expect(capture.names).to.deep.equal({ slot: 'default', publication: 'default' });
    });

    it('the variables win over capture.slot and capture.publication', () => {
      const file = temp.write('c.yaml', 'capture: { slot: file_slot, publication: file_pub }\n');
      const fromFile = loadConfig({ env: { ...MINIMAL_ENV }, configPath: file }).capture;
      expect([fromFile.slot, fromFile.publication, fromFile.names]).to.deep.equal(['file_slot', 'file_pub', { slot: 'file', publication: 'file' }]);
      const fromEnv = loadConfig({
        env: { ...MINIMAL_ENV, PG_CLOUDEVENTS_SLOT: 'env_slot', PG_CLOUDEVENTS_PUBLICATION: ' env_pub ' }, configPath: file,
      }).capture;
      expect([fromEnv.slot, fromEnv.publication, fromEnv.names]).to.deep.equal(['env_slot', 'env_pub', { slot: 'environment', publication: 'environment' }]);
      const blank = loadConfig({ env: { ...MINIMAL_ENV, PG_CLOUDEVENTS_SLOT: ' ' }, configPath: file }).capture;
      expect(blank.slot).to.equal('file_slot');
    });

    it('an invalid name is refused naming the variable', () => {
      const err = configError({ env: { ...MINIMAL_ENV, PG_CLOUDEVENTS_SLOT: 'Bad-Name', PG_CLOUDEVENTS_PUBLICATION: 'p'.repeat(64) } });
      expectProblem(err, 'PG_CLOUDEVENTS_SLOT', 'a-z, 0-9 and _', '"Bad-Name"');
      expectProblem(err, 'PG_CLOUDEVENTS_PUBLICATION', '1 to 63 characters');
    });
  });

  describe('loading: a command asks only for what it needs', () => {
    it('tables are required by default, and not with requires.tables = false', () => {
      const env = { DATABASE_URL: MINIMAL_ENV.DATABASE_URL };
      expectProblem(configError({ env }), 'tables', 'PG_CLOUDEVENTS_TABLES');
      expect(loadConfig({ env, requires: { tables: false } }).tables).to.deep.equal([]);
      // Configured tables are still read (and checked) when not required.
      expect(loadConfig({ env: { ...MINIMAL_ENV }, requires: { tables: false } }).tables).to.have.length(1);
      expectProblem(configError({ env: { ...env, PG_CLOUDEVENTS_TABLES: ' , ' }, requires: { tables: false } }), 'PG_CLOUDEVENTS_TABLES');
    });

    it('DATABASE_URL is still required, unless requires.database = false (workflows: Redis only)', () => {
      expectProblem(configError({ env: {}, requires: { tables: false } }), 'DATABASE_URL');
      expect(loadConfig({ env: {}, requires: { tables: false, database: false } }).databaseUrl).to.equal('');
      // One given is still checked.
      expectProblem(configError({ env: { DATABASE_URL: 'notaurl' }, requires: { tables: false, database: false } }), 'DATABASE_URL');
    });
  });
});
