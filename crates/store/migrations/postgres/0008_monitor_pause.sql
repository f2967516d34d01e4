-- Issue 14: a volunteer pauses and resumes their own monitor from the
-- manage pages. The status it had before (active or testing) is kept so
-- resuming restores it: a global `testing` monitor never becomes `active`
-- by itself, and an active one must not lose that by a pause. NULL: not
-- paused by its volunteer (an admin's pause is the admin's to lift).
ALTER TABLE monitors ADD COLUMN paused_from TEXT;
-- The volunteer's page lists the traceroutes one monitor ran.
CREATE INDEX traceroutes_monitor ON traceroutes (monitor_id, ts);
