-- events_relay_enqueue, version 1 (migration 0009): the webhook relay's queue is filled by the
-- insert of an event, whatever statement inserts it (the payments' single-statement change, the
-- outbox's batches), so no writer can forget it. A change is a new file loaded by a new
-- migration; this one never changes.

CREATE FUNCTION events_relay_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO event_relay_queue (seq) SELECT seq FROM new_events;
    RETURN NULL;
END
$$;

CREATE TRIGGER events_relay_enqueue AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION events_relay_enqueue();
