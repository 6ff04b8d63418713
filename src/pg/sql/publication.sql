-- publication: one publication, if it exists.
--
-- Run by: inspect() (src/sources/logical/setup.ts) and the slot health poller, which asks whether
-- a publication the slot could not decode exists now (src/server/slot-health.ts).
-- Parameters:
--   $1  text  the publication's name (capture.publication)
-- Returns: one row, or none when there is no such publication.
--   pubname      name  its name
--   pubinsert    bool  it publishes inserts
--   pubupdate    bool  it publishes updates
--   pubdelete    bool  it publishes deletes
--   pubtruncate  bool  it publishes truncates
--   puballtables bool  FOR ALL TABLES

SELECT p.pubname, p.pubinsert, p.pubupdate, p.pubdelete, p.pubtruncate, p.puballtables
FROM pg_publication p WHERE p.pubname = $1;
