"""Representative test data for backup tests (server-side SQL, small)."""

from __future__ import annotations

import psycopg

TYPE_ZOO = """
CREATE TABLE IF NOT EXISTS type_zoo (
    id bigserial PRIMARY KEY,
    blob bytea,
    tags text[],
    nums integer[],
    n_free numeric,
    n_big numeric(30, 10),
    f8 double precision,
    f4 real,
    iv interval,
    t time,
    u uuid,
    j json,
    ts timestamp,
    c char(3)
)
"""

SEED = r"""
INSERT INTO properties (id, code, name, timezone, currency)
VALUES (1, 'P1', 'Hôtel Ämbassade 東京', 'Europe/Paris', 'EUR'), (2, 'P2', 'Two', 'UTC', 'USD');
INSERT INTO room_types (id, property_id, code, name, max_occupancy, total_units)
VALUES (1, 1, 'DBL', 'Double', 2, 10), (2, 1, 'STE', 'Suite "Royale", ß', 4, 2);
INSERT INTO rooms (id, property_id, room_type_id, number, floor)
VALUES (1, 1, 1, '101', 1), (2, 1, 2, '201', NULL);
INSERT INTO rate_plans (id, property_id, room_type_id, code, name, meal_plan)
VALUES (1, 1, 1, 'BAR', 'Best available', NULL), (2, 1, 2, 'BB', 'B&B', 'breakfast');
INSERT INTO rates (rate_plan_id, date, amount, min_los, max_los)
SELECT 1, d::date, 99.99 + extract(day from d)::numeric / 100, NULL, 7
FROM generate_series('2026-01-01'::date, '2026-01-31'::date, '1 day') d;
INSERT INTO inventory (room_type_id, date, total, sold)
SELECT 1, d::date, 10, 3 FROM generate_series('2026-01-01'::date, '2026-01-10'::date, '1 day') d;
INSERT INTO guests (id, first_name, last_name, email, phone, country)
VALUES (1, 'Zoë', 'Ångström', 'zoe@example.com', NULL, 'SE'),
       (2, '', 'Empty-first', NULL, '', NULL),
       (3, 'Line', E'Multi\nLine, "quoted"\\back', 'x@y', '+33', 'FR');
INSERT INTO guests (id, first_name, last_name, email)
SELECT i, 'G' || i, 'Generated', 'g' || i || '@example.com' FROM generate_series(4, 300) i;
SELECT setval(pg_get_serial_sequence('guests', 'id'), 300);
INSERT INTO reservations (id, property_id, guest_id, room_type_id, room_id, rate_plan_id,
    confirmation_code, check_in, check_out, adults, children, amount, status, source_channel,
    notes, created_at)
SELECT i, 1, 1 + (i % 300), 1, CASE WHEN i % 3 = 0 THEN NULL ELSE 1 END, 1, 'C' || i,
       '2026-01-01'::date + (i % 60), '2026-01-02'::date + (i % 60) + (i % 5), 2, i % 2,
       (i * 1.37)::numeric(12, 2), 'confirmed', CASE WHEN i % 2 = 0 THEN 'agoda' END,
       CASE WHEN i % 7 = 0 THEN E'late check-in\n☃ "note", comma' END,
       '2026-01-01 12:34:56.123456+02'::timestamptz + i * interval '1 minute'
FROM generate_series(1, 500) i;
SELECT setval(pg_get_serial_sequence('reservations', 'id'), 500);
INSERT INTO channels (id, property_id, name, channel_name, config_encrypted, config_public)
VALUES (1, 1, 'Agoda main', 'agoda', 'v1:xyz',
        '{"hotelId": "123", "nested": {"a": [1, 2.50, null, "ü"]}, "big": 12345678901234567890}');
INSERT INTO channel_bookings (id, channel_id, reservation_id, external_booking_id, status,
    raw_payload, acknowledged_at)
VALUES (1, 1, 1, 'EXT-1', 'new', '{"k": "v", "emoji": "😀"}', '2026-02-03 04:05:06+00'),
       (2, 1, NULL, 'EXT-2', 'cancelled', '[]', NULL);
INSERT INTO channel_sync_logs (channel_id, operation, status, flow_run_id, error_messages)
VALUES (1, 'pull', 'completed', 'a3bb189e-8bf9-3888-9912-ace4e6543002', '["x"]');
INSERT INTO system_backups (id, backup_type, status, file_path, parent_id, metadata)
VALUES (1, 'full', 'completed', '/x/a', NULL, '{}'), (2, 'incremental', 'completed', '/x/b', 1,
        '{"n": 1}');
UPDATE system_backups SET parent_id = 2 WHERE id = 1 AND false;
SELECT setval(pg_get_serial_sequence('system_backups', 'id'), 2);
INSERT INTO audit_logs (actor, action, entity_type, entity_id, before, after)
VALUES ('admin', 'create', 'guest', '1', NULL, '{"a": 1}');
INSERT INTO system_settings (key, value) VALUES ('auto_sync', 'true'), ('s', '"str"');
INSERT INTO type_zoo (blob, tags, nums, n_free, n_big, f8, f4, iv, t, u, j, ts, c)
VALUES ('\x00ff10'::bytea, ARRAY['a', 'b,c', NULL, ''], ARRAY[1, NULL, 3],
        123456789012345678901234567890.123456789, 12345678901234567890.0123456789,
        0.1, 1.5, '1 day 02:03:04', '23:59:59.999', gen_random_uuid(), '{"x": [1,2]}',
        '2026-01-01 00:00:00.000001', 'ab'),
       (NULL, '{}', NULL, NULL, NULL, 'NaN', '-Infinity', NULL, NULL, NULL, NULL, NULL, NULL),
       ('', ARRAY['"q"'], ARRAY[]::int[], -0.5, -1, -1.7976931348623157e308, 3.4e38,
        '-1 mon', '00:00', NULL, 'null', '1999-12-31 23:59:59', '   ');
DO $$ DECLARE t text; BEGIN
  FOREACH t IN ARRAY ARRAY['properties', 'room_types', 'rooms', 'rate_plans', 'channels',
                           'channel_bookings'] LOOP
    EXECUTE format('SELECT setval(pg_get_serial_sequence(%L, ''id''), max(id)) FROM %I', t, t);
  END LOOP;
END $$;
"""


def seed(url: str) -> None:
    """Create the type-zoo table and insert the representative rows."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(TYPE_ZOO)
        conn.execute(SEED)


def add_type_zoo(url: str) -> None:
    """Create the extra type table in a restore target."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(TYPE_ZOO)
