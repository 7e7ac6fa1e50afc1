-- fieldbook schema, version 1. The same text feeds SQLite and PostgreSQL:
-- @ID@ is replaced by the backend's auto-increment primary key.
CREATE TABLE users (
    id @ID@,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    nps_prompted_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE TABLE fields (
    id @ID@,
    owner_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    location TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE crops (
    id @ID@,
    owner_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    field_id BIGINT NOT NULL REFERENCES fields(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    variety TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE records (
    id @ID@,
    owner_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    crop_id BIGINT NOT NULL REFERENCES crops(id) ON DELETE CASCADE,
    day TEXT NOT NULL,
    kind TEXT NOT NULL,
    quantity DOUBLE PRECISION,
    unit TEXT NOT NULL,
    notes TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX records_owner_day ON records (owner_id, day);
CREATE TABLE photos (
    id @ID@,
    record_id BIGINT NOT NULL REFERENCES records(id) ON DELETE CASCADE,
    object_key TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE inquiries (
    id @ID@,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    category TEXT NOT NULL,
    subject TEXT NOT NULL,
    status TEXT NOT NULL,
    assignee_id BIGINT REFERENCES users(id) ON DELETE SET NULL,
    screenshot_key TEXT,
    created_at BIGINT NOT NULL,
    first_response_at BIGINT,
    closed_at BIGINT
);
CREATE TABLE inquiry_messages (
    id @ID@,
    inquiry_id BIGINT NOT NULL REFERENCES inquiries(id) ON DELETE CASCADE,
    author_id BIGINT REFERENCES users(id) ON DELETE SET NULL,
    author_kind TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE feedback (
    id @ID@,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE nps_responses (
    id @ID@,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    score BIGINT NOT NULL,
    comment TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE support_content (
    id BIGINT PRIMARY KEY,
    revision BIGINT NOT NULL,
    document TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE incidents (
    id @ID@,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    impact TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    resolved_at BIGINT
);
CREATE TABLE incident_updates (
    id @ID@,
    incident_id BIGINT NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE logs (
    id @ID@,
    category TEXT NOT NULL,
    ts BIGINT NOT NULL,
    data TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX logs_category_id ON logs (category, id);
CREATE TABLE log_checkpoints (
    category TEXT PRIMARY KEY,
    last_id BIGINT NOT NULL,
    last_hash TEXT NOT NULL,
    pruned_total BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
