/**
 * Baseline 3: what a user writes by hand instead of running pg-cloudevents — pg-logical-replication
 * (pgoutput) and fetch, one POST per change, acknowledging each transaction once its changes are
 * posted. Flow control keeps it from buffering the whole slot in memory (without it, every
 * change's handler would start at once).
 *
 *   DATABASE_URL=… SLOT=… PUBLICATION=… K_SINK=… node dist/bench/baselines/handwritten.js
 */
import { LogicalReplicationService, PgoutputPlugin, type Pgoutput } from 'pg-logical-replication';

const url = process.env.DATABASE_URL!;
const slot = process.env.SLOT!;
const publication = process.env.PUBLICATION!;
const sink = process.env.K_SINK!;

async function main(): Promise<void> {
  const service = new LogicalReplicationService(
    { connectionString: url },
    { acknowledge: { auto: false, timeoutSeconds: 0 }, flowControl: { enabled: true } },
  );
  const plugin = new PgoutputPlugin({ protoVersion: 1, publicationNames: [publication] });
  let time = '';
  let n = 0;

  service.on('data', async (lsn: string, msg: Pgoutput.Message) => {
    switch (msg.tag) {
      case 'begin':
        // commitTime: microseconds since the Unix epoch.
        time = new Date(Number((msg.commitTime as bigint) / 1000n)).toISOString();
        n = 0;
        return;
      case 'insert':
      case 'update':
      case 'delete': {
        const row = msg.tag === 'delete' ? (msg.old ?? msg.key) : msg.new;
        n += 1;
        const res = await fetch(sink, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'ce-specversion': '1.0',
            'ce-id': `${lsn}-${n}`,
            'ce-source': '/handwritten',
            'ce-type': `db.${msg.tag}`,
            'ce-time': time,
            'ce-subject': `${msg.relation.schema}.${msg.relation.name}`,
          },
          body: JSON.stringify(row),
        });
        await res.arrayBuffer();
        if (!res.ok) throw new Error(`sink answered ${res.status}`);
        return;
      }
      case 'commit':
        await service.acknowledge(lsn);
        return;
      default:
        return;
    }
  });
  service.on('error', (err: Error) => {
    console.error(err);
    process.exit(1);
  });
  process.on('SIGTERM', () => void service.stop().then(() => process.exit(0)));
  await service.subscribe(plugin, slot);
}

void main();
