-- One drill of a plan at a time, held by the database: two requests to start the same plan in
-- the same instant both pass the "is one already scheduled or running?" read, and only one of
-- the two inserts may succeed (the other is a unique violation, answered 409 / exit 5).
CREATE UNIQUE INDEX drills_one_active_per_plan ON drills (plan)
    WHERE status IN ('scheduled', 'running');
