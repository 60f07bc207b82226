-- Accounts, sessions and failed sign-ins of the HR web app (nmbrs-sync web; worker/adapters/web_accounts.py).

CREATE TABLE web_users (
    user_name     text        PRIMARY KEY,
    display_name  text,
    email         text,
    role          text        NOT NULL CHECK (role IN ('lezer', 'hr', 'beheer')),
    password_hash text,                            -- argon2id; NULL: signs in only through the auth proxy
    disabled      boolean     NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
-- 'Jan' and 'jan' would be two accounts that read as one in every list and in decided_by.
CREATE UNIQUE INDEX web_users_folded_name ON web_users (lower(user_name));

CREATE TABLE web_sessions (
    token_hash   bytea       PRIMARY KEY,          -- sha256 of the cookie's token: a copy of this table opens no session
    user_name    text        NOT NULL REFERENCES web_users (user_name) ON DELETE CASCADE,
    csrf_token   text        NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL
);
CREATE INDEX web_sessions_expiry ON web_sessions (expires_at);
CREATE INDEX web_sessions_user ON web_sessions (user_name);  -- ending a user's sessions, the cascade

-- Kept apart from web_users: names without an account are throttled too, so that trying them tells nothing.
CREATE TABLE web_sign_in_failures (
    id        bigserial   PRIMARY KEY,
    user_name text        NOT NULL,
    address   text        NOT NULL,
    failed_at timestamptz NOT NULL
);
CREATE INDEX web_sign_in_failures_by_name ON web_sign_in_failures (user_name, failed_at);
CREATE INDEX web_sign_in_failures_by_address ON web_sign_in_failures (address, failed_at);
