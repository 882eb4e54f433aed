-- Outbound campaigns (issue #7): campaigns, their leads, do-not-call lists.
-- Written only by cc_ari/db/; read through report.leads.

CREATE TABLE cc.campaigns (
    name        text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
    mode        text NOT NULL CHECK (mode IN ('preview', 'progressive', 'predictive')),
    caller_id   text NOT NULL,
    settings    jsonb NOT NULL,                  -- the validated settings (cc_ari/campaigns/models.py)
    state       text NOT NULL DEFAULT 'created'
                CHECK (state IN ('created', 'running', 'paused', 'stopped', 'finished')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cc.leads (
    campaign        text NOT NULL REFERENCES cc.campaigns (name) ON DELETE CASCADE,
    lead_id         text NOT NULL,
    phone           text NOT NULL,                -- E.164
    timezone        text NOT NULL,                -- shown: the explicit zone or the number's first
    timezones       text[] NOT NULL,              -- the calling window must be open in every one
    fields          jsonb NOT NULL DEFAULT '{}',  -- custom columns, shown to the agent
    line            integer,                      -- line in the file it was imported from
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'scheduled', 'done', 'dnc', 'exhausted')),
    attempts        integer NOT NULL DEFAULT 0,
    last_outcome    text,
    disposition     text,
    next_attempt_at timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign, lead_id),
    UNIQUE (campaign, phone)
);
CREATE INDEX leads_due ON cc.leads (campaign, next_attempt_at) WHERE status IN ('pending', 'scheduled');

CREATE TABLE cc.dnc (
    number    text PRIMARY KEY,                   -- E.164
    added_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cc.campaign_dnc (
    campaign  text NOT NULL REFERENCES cc.campaigns (name) ON DELETE CASCADE,
    number    text NOT NULL,
    added_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign, number)
);

CREATE OR REPLACE VIEW report.leads AS
SELECT campaign, lead_id, phone, timezone, status, attempts, last_outcome, disposition, next_attempt_at,
       fields, created_at
FROM cc.leads;
