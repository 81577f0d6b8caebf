/**
 * The PostgreSQL side of invalidation (docs/postgres.md), as SQL the node runs
 * at start (idempotent: every statement is CREATE … IF NOT EXISTS or CREATE
 * OR REPLACE), in the schema its connection's search_path names.
 *
 * - `strata_invalidations`: the outbox. A row is written in the same
 *   transaction as the change it is about, so it exists exactly when the
 *   change does; NOTIFY only wakes the listener, which reads the outbox.
 * - `strata_invalidation_cursor`: the applier's cursor (one applier at a
 *   time: a session advisory lock). Every row up to it is applied; rows
 *   above it may be too (it stops below ids that may still commit).
 * - `strata_invalidate(keys, tags)`: writes a row and notifies. It takes
 *   the transaction's xid before the row's id, so that a reader that sees a
 *   gap in the ids can tell when no transaction may fill it any more
 *   (postgres.ts).
 * - `strata_invalidate_row()`: a trigger function; `TG_ARGV[0]` is the key
 *   prefix, `TG_ARGV[1]` the column whose value ends the key (default id).
 *   It invalidates the row's key, and on UPDATE the old key too when the
 *   column changed.
 */

/** The NOTIFY channel strata_invalidate() wakes the listener on (it always LISTENs there). */
export const DEFAULT_CHANNEL = 'strata_invalidate';

/** Key of the advisory locks: the applier's session lock, and the migration's transaction lock. */
export const APPLIER_LOCK = 0x5354_5241; // "STRA"
export const MIGRATION_LOCK = 0x5354_524d; // "STRM"

export const MIGRATION = `
CREATE TABLE IF NOT EXISTS strata_invalidations (
  id bigserial PRIMARY KEY,
  payload jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS strata_invalidation_cursor (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  applied_id bigint NOT NULL
);
INSERT INTO strata_invalidation_cursor (applied_id) VALUES (0) ON CONFLICT DO NOTHING;
CREATE OR REPLACE FUNCTION strata_invalidate(keys text[], tags text[] DEFAULT '{}') RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  -- The xid first: a transaction that holds an id is then older than any xid taken after its id (see Gap in postgres.ts).
  PERFORM pg_current_xact_id();
  INSERT INTO strata_invalidations (payload)
    VALUES (jsonb_build_object('keys', to_jsonb(COALESCE(keys, '{}')), 'tags', to_jsonb(COALESCE(tags, '{}'))));
  PERFORM pg_notify('${DEFAULT_CHANNEL}', '');
END $$;
CREATE OR REPLACE FUNCTION strata_invalidate_row() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  prefix text := TG_ARGV[0];
  col text := COALESCE(TG_ARGV[1], 'id');
  old_id text;
  new_id text;
BEGIN
  IF TG_OP <> 'INSERT' THEN old_id := to_jsonb(OLD) ->> col; END IF;
  IF TG_OP <> 'DELETE' THEN new_id := to_jsonb(NEW) ->> col; END IF;
  IF new_id IS NOT NULL THEN PERFORM strata_invalidate(ARRAY[prefix || new_id]); END IF;
  IF old_id IS NOT NULL AND old_id IS DISTINCT FROM new_id THEN PERFORM strata_invalidate(ARRAY[prefix || old_id]); END IF;
  RETURN NULL;
END $$;
`;
