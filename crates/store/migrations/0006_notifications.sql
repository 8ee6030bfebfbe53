-- System notifications from the operator, with the progress of their optional mailing; and
-- indexes for viewing the audit trail by organisation and by person.

CREATE TABLE notifications (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    importance TEXT NOT NULL,
    publish_from BIGINT NOT NULL,
    publish_until BIGINT,
    audience TEXT NOT NULL,
    email BIGINT NOT NULL DEFAULT 0,
    emailed_up_to TEXT NOT NULL DEFAULT '',
    emailed_done_at BIGINT,
    created_by TEXT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL
);
CREATE INDEX notifications_publish_from ON notifications (publish_from);

CREATE INDEX audit_events_organisation ON audit_events (organisation_id, seq);
CREATE INDEX audit_events_subject ON audit_events (subject_id, seq);
CREATE INDEX audit_events_actor ON audit_events (actor_id, seq);
