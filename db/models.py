"""The schema as SQLAlchemy 2.0 typed models. Migrations (db/migrations) are the truth;
these models must match them (a test compares the two)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from db.base import TZ, Base, CreatedMixin, TimestampMixin

Money = Numeric(12, 2)
CHANNEL_NAMES = ("booking.com", "agoda", "expedia", "airbnb")
RESERVATION_STATUSES = (
    "pending",
    "confirmed",
    "cancelled",
    "no_show",
    "checked_in",
    "checked_out",
)
ROLES = ("viewer", "operator", "admin")
PAYMENT_MODELS = ("ota_collect", "hotel_collect", "virtual_card", "unknown")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


# ---------------------------------------------------------------- PMS core


class Property(TimestampMixin, Base):
    __tablename__ = "properties"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default=text("'UTC'"))
    currency: Mapped[str] = mapped_column(String(3), default="EUR", server_default=text("'EUR'"))


class RoomType(TimestampMixin, Base):
    __tablename__ = "room_types"
    __table_args__ = (UniqueConstraint("property_id", "code"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    property_id: Mapped[int] = mapped_column(ForeignKey("properties.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    max_occupancy: Mapped[int] = mapped_column(Integer, default=2, server_default=text("2"))
    total_units: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))


class Room(TimestampMixin, Base):
    __tablename__ = "rooms"
    __table_args__ = (UniqueConstraint("property_id", "number"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    property_id: Mapped[int] = mapped_column(ForeignKey("properties.id", ondelete="CASCADE"))
    room_type_id: Mapped[int] = mapped_column(
        ForeignKey("room_types.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[str] = mapped_column(String(16))
    floor: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default="clean", server_default=text("'clean'"))


class RatePlan(TimestampMixin, Base):
    __tablename__ = "rate_plans"
    __table_args__ = (UniqueConstraint("room_type_id", "code"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    property_id: Mapped[int] = mapped_column(
        ForeignKey("properties.id", ondelete="CASCADE"), index=True
    )
    room_type_id: Mapped[int] = mapped_column(ForeignKey("room_types.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3), default="EUR", server_default=text("'EUR'"))
    meal_plan: Mapped[str | None] = mapped_column(String(32))
    refundable: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))


class Inventory(Base):
    """Rooms of one type on one hotel-local date."""

    __tablename__ = "inventory"
    __table_args__ = (
        CheckConstraint("total >= 0", name="total_nonnegative"),
        CheckConstraint("sold >= 0", name="sold_nonnegative"),
        CheckConstraint("held >= 0", name="held_nonnegative"),
        Index("ix_inventory_date", "date"),
    )

    room_type_id: Mapped[int] = mapped_column(
        ForeignKey("room_types.id", ondelete="CASCADE"), primary_key=True
    )
    date: Mapped[date] = mapped_column(Date, primary_key=True)
    total: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    sold: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    held: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    stop_sell: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    updated_at: Mapped[datetime] = mapped_column(
        TZ, server_default=text("now()"), onupdate=text("now()")
    )


class Rate(Base):
    """Price and restrictions of one rate plan on one hotel-local date."""

    __tablename__ = "rates"
    __table_args__ = (
        CheckConstraint("amount >= 0", name="amount_nonnegative"),
        CheckConstraint(
            "max_los IS NULL OR min_los IS NULL OR max_los >= min_los", name="los_order"
        ),
        Index("ix_rates_date", "date"),
    )

    rate_plan_id: Mapped[int] = mapped_column(
        ForeignKey("rate_plans.id", ondelete="CASCADE"), primary_key=True
    )
    date: Mapped[date] = mapped_column(Date, primary_key=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3), default="EUR", server_default=text("'EUR'"))
    min_los: Mapped[int | None] = mapped_column(Integer)
    max_los: Mapped[int | None] = mapped_column(Integer)
    closed_to_arrival: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    closed_to_departure: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    closed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    updated_at: Mapped[datetime] = mapped_column(
        TZ, server_default=text("now()"), onupdate=text("now()")
    )


class Guest(TimestampMixin, Base):
    __tablename__ = "guests"
    __table_args__ = (Index("ix_guests_name", "last_name", "first_name"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(254), index=True)
    phone: Mapped[str | None] = mapped_column(String(50))
    country: Mapped[str | None] = mapped_column(String(2))


class Reservation(TimestampMixin, Base):
    __tablename__ = "reservations"
    __table_args__ = (
        CheckConstraint("check_out > check_in", name="stay_order"),
        CheckConstraint("adults >= 0 AND children >= 0", name="guests_nonnegative"),
        CheckConstraint(_in("status", RESERVATION_STATUSES), name="status_valid"),
        Index("ix_reservations_property_check_in", "property_id", "check_in"),
        Index("ix_reservations_room_type_stay", "room_type_id", "check_in", "check_out"),
        Index("ix_reservations_status", "status"),
        Index("ix_reservations_source_channel", "source_channel"),
        UniqueConstraint("channel_id", "external_ref", "room_index"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    property_id: Mapped[int] = mapped_column(ForeignKey("properties.id", ondelete="RESTRICT"))
    guest_id: Mapped[int] = mapped_column(ForeignKey("guests.id", ondelete="RESTRICT"), index=True)
    room_type_id: Mapped[int | None] = mapped_column(
        ForeignKey("room_types.id", ondelete="RESTRICT")
    )
    room_id: Mapped[int | None] = mapped_column(
        ForeignKey("rooms.id", ondelete="SET NULL"), index=True
    )
    rate_plan_id: Mapped[int | None] = mapped_column(
        ForeignKey("rate_plans.id", ondelete="SET NULL"), index=True
    )
    confirmation_code: Mapped[str | None] = mapped_column(String(64), unique=True)
    check_in: Mapped[date] = mapped_column(Date)
    check_out: Mapped[date] = mapped_column(Date)
    adults: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    children: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    amount: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"), server_default=text("0"))
    currency: Mapped[str] = mapped_column(String(3), default="EUR", server_default=text("'EUR'"))
    status: Mapped[str] = mapped_column(
        String(20), default="confirmed", server_default=text("'confirmed'")
    )
    source_channel: Mapped[str | None] = mapped_column(String(32))
    overbooked: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    notes: Mapped[str | None] = mapped_column(Text)
    # A channel booking becomes one reservation per booked room: (channel, partner id, room).
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channels.id", ondelete="SET NULL"))
    external_ref: Mapped[str | None] = mapped_column(String(128))
    room_index: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))


# ---------------------------------------------------------------- channels


class PartnerAccount(TimestampMixin, Base):
    """A partner account that serves many properties (issue 13): one Booking.com machine
    account, one Expedia EQC user, one Agoda key. It holds the credentials (`apiKey`,
    `apiSecret`, `webhookSecret`) and where the partner lives (`endpoint`), encrypted like a
    channel's config; each channel of the account is a *property connection* that maps the
    account's hotel id (`hotelId`) to one of our properties."""

    __tablename__ = "partner_accounts"
    __table_args__ = (
        CheckConstraint(_in("channel_name", CHANNEL_NAMES), name="channel_name_valid"),
        UniqueConstraint("name"),
        UniqueConstraint("id", "channel_name"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    channel_name: Mapped[str] = mapped_column(String(32))
    config_encrypted: Mapped[str] = mapped_column(Text)
    config_public: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )


class Channel(TimestampMixin, Base):
    """One OTA connection. `config_encrypted` holds the whole ChannelConfig, encrypted;
    `config_public` the non-secret fields for display and filtering. A channel of a partner
    account (`account_id`) is that account's connection to one property: the account's
    credentials and endpoint apply, the channel holds the hotel id."""

    __tablename__ = "channels"
    __table_args__ = (
        CheckConstraint(_in("channel_name", CHANNEL_NAMES), name="channel_name_valid"),
        UniqueConstraint("name"),
        # A channel's account is of the same partner.
        ForeignKeyConstraint(
            ["account_id", "channel_name"],
            ["partner_accounts.id", "partner_accounts.channel_name"],
            name="fk_channels_account_partner",
            ondelete="RESTRICT",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    property_id: Mapped[int | None] = mapped_column(
        ForeignKey("properties.id", ondelete="CASCADE"), index=True
    )
    account_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    name: Mapped[str] = mapped_column(String(100))
    channel_name: Mapped[str] = mapped_column(String(32), index=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    config_encrypted: Mapped[str] = mapped_column(Text)
    config_public: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    last_successful_sync: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )


class ChannelRoomMapping(CreatedMixin, Base):
    __tablename__ = "channel_room_mappings"
    __table_args__ = (
        UniqueConstraint("channel_id", "room_type_id"),
        UniqueConstraint("channel_id", "partner_room_code"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    room_type_id: Mapped[int] = mapped_column(
        ForeignKey("room_types.id", ondelete="CASCADE"), index=True
    )
    partner_room_code: Mapped[str] = mapped_column(String(64))


class ChannelRateMapping(CreatedMixin, Base):
    __tablename__ = "channel_rate_mappings"
    __table_args__ = (
        UniqueConstraint("channel_id", "rate_plan_id"),
        UniqueConstraint("channel_id", "partner_room_code", "partner_rate_code"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    rate_plan_id: Mapped[int] = mapped_column(
        ForeignKey("rate_plans.id", ondelete="CASCADE"), index=True
    )
    partner_room_code: Mapped[str] = mapped_column(String(64))
    partner_rate_code: Mapped[str] = mapped_column(String(64))


class ChannelBooking(TimestampMixin, Base):
    """A booking as the partner sent it, exactly once per (channel, external id)."""

    __tablename__ = "channel_bookings"
    __table_args__ = (
        UniqueConstraint("channel_id", "external_booking_id"),
        Index("ix_channel_bookings_sync_status", "sync_status"),
        Index("ix_channel_bookings_status", "status"),
        Index("ix_channel_bookings_created_at", "created_at"),
        Index("ix_channel_bookings_check_in", "check_in"),
        Index(
            "ix_channel_bookings_group",
            "channel_id",
            "group_id",
            postgresql_where=text("group_id IS NOT NULL"),
        ),
        CheckConstraint(
            f"payment_model IS NULL OR {_in('payment_model', PAYMENT_MODELS)}",
            name="payment_model_valid",
        ),
        # PCI DSS: never more than the last four digits of a card.
        CheckConstraint("card_last4 ~ '^[0-9]{1,4}$'", name="card_last4_digits"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="RESTRICT"))
    reservation_id: Mapped[int | None] = mapped_column(
        ForeignKey("reservations.id", ondelete="SET NULL"), index=True
    )
    external_booking_id: Mapped[str] = mapped_column(String(128))
    revision: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    raw_payload: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    sync_status: Mapped[str] = mapped_column(
        String(20), default="pending", server_default=text("'pending'")
    )
    sync_error: Mapped[str | None] = mapped_column(Text)
    overbooked: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    acknowledged_at: Mapped[datetime | None] = mapped_column(TZ)
    #: Partner message revisions acknowledged so far: ack each message once, and only once.
    acked_revisions: Mapped[list[str]] = mapped_column(
        ARRAY(Text), default=list, server_default=text("'{}'::text[]")
    )
    #: Digests of the acknowledged messages' content (BookingRecord.message_digest): a
    #: re-delivered message is recognised even when its revision is new (Booking.com).
    acked_messages: Mapped[list[str]] = mapped_column(
        ARRAY(Text), default=list, server_default=text("'{}'::text[]")
    )
    last_synced_at: Mapped[datetime | None] = mapped_column(TZ)
    # ---- what the PMS uses, as the partner's latest message gives it (issue 10). A cancel
    # that omits a value keeps the stored one.
    hotel_code: Mapped[str | None] = mapped_column(Text)
    check_in: Mapped[date | None] = mapped_column(Date)
    check_out: Mapped[date | None] = mapped_column(Date)
    booked_at: Mapped[datetime | None] = mapped_column(TZ)
    total_amount: Mapped[Decimal | None] = mapped_column(Money)
    amount_before_tax: Mapped[Decimal | None] = mapped_column(Money)
    taxes: Mapped[Decimal | None] = mapped_column(Money)
    commission: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str | None] = mapped_column(String(3))
    payment_model: Mapped[str | None] = mapped_column(String(20))
    card_type: Mapped[str | None] = mapped_column(String(20))
    card_last4: Mapped[str | None] = mapped_column(String(4))
    card_activation_date: Mapped[date | None] = mapped_column(Date)
    card_deactivation_date: Mapped[date | None] = mapped_column(Date)
    card_amount: Mapped[Decimal | None] = mapped_column(Money)
    booker_first_name: Mapped[str | None] = mapped_column(Text)
    booker_last_name: Mapped[str | None] = mapped_column(Text)
    booker_email: Mapped[str | None] = mapped_column(Text)
    booker_phone: Mapped[str | None] = mapped_column(Text)
    booker_country: Mapped[str | None] = mapped_column(String(2))
    language: Mapped[str | None] = mapped_column(Text)
    loyalty: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    #: Bookings the partner split per room (Expedia multi-room) share it.
    group_id: Mapped[str | None] = mapped_column(String(128))
    source: Mapped[str | None] = mapped_column(Text)
    cancel_policy: Mapped[str | None] = mapped_column(Text)
    cancel_penalties: Mapped[list[Any] | None] = mapped_column(JSONB)
    extras: Mapped[list[Any] | None] = mapped_column(JSONB)
    special_requests: Mapped[list[Any] | None] = mapped_column(JSONB)
    comments: Mapped[str | None] = mapped_column(Text)


class ChannelBookingRoom(TimestampMixin, Base):
    """One booked room of a channel booking as the partner sent it (room_index = the
    reservation's room_index)."""

    __tablename__ = "channel_booking_rooms"

    channel_booking_id: Mapped[int] = mapped_column(
        ForeignKey("channel_bookings.id", ondelete="CASCADE"), primary_key=True
    )
    room_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    reservation_id: Mapped[int | None] = mapped_column(
        ForeignKey("reservations.id", ondelete="SET NULL"), index=True
    )
    external_room_id: Mapped[str | None] = mapped_column(Text)
    partner_room_type_code: Mapped[str] = mapped_column(Text)
    partner_rate_plan_code: Mapped[str | None] = mapped_column(Text)
    room_name: Mapped[str | None] = mapped_column(Text)
    rate_plan_name: Mapped[str | None] = mapped_column(Text)
    meal_plan: Mapped[str | None] = mapped_column(Text)
    check_in: Mapped[date | None] = mapped_column(Date)
    check_out: Mapped[date | None] = mapped_column(Date)
    adults: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    children: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    child_ages: Mapped[list[int]] = mapped_column(
        ARRAY(Integer), default=list, server_default=text("'{}'::int[]")
    )
    extra_beds: Mapped[int | None] = mapped_column(Integer)
    smoking: Mapped[bool | None] = mapped_column(Boolean)
    amount: Mapped[Decimal | None] = mapped_column(Money)
    amount_before_tax: Mapped[Decimal | None] = mapped_column(Money)
    taxes: Mapped[Decimal | None] = mapped_column(Money)
    commission: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str | None] = mapped_column(String(3))
    #: The staying guest of this room, when the partner names one apart from the booker.
    guest_first_name: Mapped[str | None] = mapped_column(Text)
    guest_last_name: Mapped[str | None] = mapped_column(Text)
    guest_email: Mapped[str | None] = mapped_column(Text)
    guest_phone: Mapped[str | None] = mapped_column(Text)
    guest_country: Mapped[str | None] = mapped_column(String(2))
    nightly_prices: Mapped[list[Any]] = mapped_column(
        JSONB, default=list, server_default=text("'[]'::jsonb")
    )
    extras: Mapped[list[Any]] = mapped_column(
        JSONB, default=list, server_default=text("'[]'::jsonb")
    )
    special_requests: Mapped[list[Any]] = mapped_column(
        JSONB, default=list, server_default=text("'[]'::jsonb")
    )
    #: The text the partner's requests last wrote into the reservation's notes (a staff edit
    #: of the notes is kept: the notes are only replaced while they still equal this).
    requests_note: Mapped[str | None] = mapped_column(Text)


class ChannelSyncLog(Base):
    __tablename__ = "channel_sync_logs"
    __table_args__ = (
        Index("ix_channel_sync_logs_channel_started", "channel_id", "started_at"),
        Index("ix_channel_sync_logs_started_at", "started_at"),
        Index("ix_channel_sync_logs_status", "status"),
        Index("ix_channel_sync_logs_operation", "operation"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channels.id", ondelete="SET NULL"))
    operation: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(
        String(20), default="running", server_default=text("'running'")
    )
    records_processed: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    records_success: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    records_failed: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    error_messages: Mapped[list[Any]] = mapped_column(
        JSONB, default=list, server_default=text("'[]'::jsonb")
    )
    details: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    started_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))
    finished_at: Mapped[datetime | None] = mapped_column(TZ)
    flow_run_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    #: The process that runs it (the reaper fails the row when that process is gone).
    host: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None] = mapped_column(Integer)


class WebhookEvent(Base):
    """A partner push received: the key makes replays and re-sends idempotent."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        UniqueConstraint("channel_id", "event_key"),
        Index("ix_webhook_events_received_at", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    event_key: Mapped[str] = mapped_column(String(200))
    external_booking_id: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(
        String(20), default="received", server_default=text("'received'")
    )
    error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))
    processed_at: Mapped[datetime | None] = mapped_column(TZ)


class ChannelAvailabilityState(Base):
    """What a channel last acknowledged for a room type on a date (ARI deltas diff to it)."""

    __tablename__ = "channel_availability_state"

    channel_id: Mapped[int] = mapped_column(
        ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True
    )
    room_type_id: Mapped[int] = mapped_column(
        ForeignKey("room_types.id", ondelete="CASCADE"), primary_key=True
    )
    date: Mapped[date] = mapped_column(Date, primary_key=True)
    available: Mapped[int] = mapped_column(Integer)
    stop_sell: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    acked_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))


class ChannelRateState(Base):
    """What a channel last acknowledged for a rate plan on a date."""

    __tablename__ = "channel_rate_state"

    channel_id: Mapped[int] = mapped_column(
        ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True
    )
    rate_plan_id: Mapped[int] = mapped_column(
        ForeignKey("rate_plans.id", ondelete="CASCADE"), primary_key=True
    )
    date: Mapped[date] = mapped_column(Date, primary_key=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    min_los: Mapped[int | None] = mapped_column(Integer)
    max_los: Mapped[int | None] = mapped_column(Integer)
    closed_to_arrival: Mapped[bool] = mapped_column(Boolean)
    closed_to_departure: Mapped[bool] = mapped_column(Boolean)
    closed: Mapped[bool] = mapped_column(Boolean)
    acked_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))


# ---------------------------------------------------------------- system


class SystemBackup(Base):
    __tablename__ = "system_backups"
    __table_args__ = (
        Index("ix_system_backups_created_at", "created_at"),
        Index("ix_system_backups_status", "status"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    backup_type: Mapped[str] = mapped_column(
        String(20), default="full", server_default=text("'full'")
    )
    status: Mapped[str] = mapped_column(
        String(20), default="running", server_default=text("'running'")
    )
    file_path: Mapped[str | None] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(Text)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("system_backups.id", ondelete="SET NULL")
    )
    backup_metadata: Mapped[dict[str, Any]] = mapped_column(
        "metadata", JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    error_message: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(100))
    flow_run_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))
    completed_at: Mapped[datetime | None] = mapped_column(TZ)
    #: The process that runs it (the reaper fails the row when that process is gone).
    host: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None] = mapped_column(Integer)


class DataSyncQueueItem(TimestampMixin, Base):
    __tablename__ = "data_sync_queue"
    __table_args__ = (
        CheckConstraint(
            _in("status", ("pending", "processing", "completed", "failed")), name="status_valid"
        ),
        Index(
            "ix_data_sync_queue_ready",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_data_sync_queue_entity", "entity_type", "entity_id"),
        Index("ix_data_sync_queue_status", "status"),
        # Coalescing: at most one pending item per entity and operation (enqueue merges).
        Index(
            "ix_data_sync_queue_pending_entity",
            "entity_type",
            "entity_id",
            "operation",
            unique=True,
            postgresql_where=text("status = 'pending'"),
        ),
        # Claims scan pending items in id order.
        Index("ix_data_sync_queue_pending_id", "id", postgresql_where=text("status = 'pending'")),
        # Expired leases (a worker died) are found without scanning the queue.
        Index(
            "ix_data_sync_queue_lease",
            "lease_expires_at",
            postgresql_where=text("status = 'processing'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    entity_type: Mapped[str] = mapped_column(String(50))
    entity_id: Mapped[str] = mapped_column(String(64))
    operation: Mapped[str] = mapped_column(String(20))
    data: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    status: Mapped[str] = mapped_column(
        String(20), default="pending", server_default=text("'pending'")
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    max_attempts: Mapped[int] = mapped_column(Integer, default=3, server_default=text("3"))
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None] = mapped_column(TZ)
    processed_at: Mapped[datetime | None] = mapped_column(TZ)


class AuditLog(Base):
    __tablename__ = "audit_logs"
    __table_args__ = (
        Index("ix_audit_logs_entity", "entity_type", "entity_id"),
        Index("ix_audit_logs_at", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(50))
    entity_type: Mapped[str] = mapped_column(String(50))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))


class SystemSetting(Base):
    __tablename__ = "system_settings"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[Any] = mapped_column(JSONB)
    updated_at: Mapped[datetime] = mapped_column(
        TZ, server_default=text("now()"), onupdate=text("now()")
    )


class ApiKey(Base):
    """An API key; only its SHA-256 hash is stored."""

    __tablename__ = "api_keys"
    __table_args__ = (CheckConstraint(_in("role", ROLES), name="role_valid"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20))
    key_prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))
    last_used_at: Mapped[datetime | None] = mapped_column(TZ)
    revoked_at: Mapped[datetime | None] = mapped_column(TZ)


class ApiKeyProperty(Base):
    """A property an API key is scoped to; a key without rows here is unscoped."""

    __tablename__ = "api_key_properties"
    __table_args__ = (Index("ix_api_key_properties_property_id", "property_id"),)

    api_key_id: Mapped[int] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True
    )
    property_id: Mapped[int] = mapped_column(
        ForeignKey("properties.id", ondelete="RESTRICT"), primary_key=True
    )


class PartnerAuthToken(Base):
    """A partner account's bearer token, shared by every process and flow run (issue 9).

    One row per partner and account (hash of token URL + client id); the token is encrypted
    under app_key(); `fingerprint` (HMAC of the credentials) makes a token of changed
    credentials unusable; `retry_not_before` is the partner's Retry-After on its token
    endpoint. Refreshes happen under pg_advisory_xact_lock (see db/repositories/auth_tokens.py).
    """

    __tablename__ = "partner_auth_tokens"
    __table_args__ = (
        UniqueConstraint("channel_name", "account_key"),
        CheckConstraint(_in("channel_name", CHANNEL_NAMES), name="channel_name_valid"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    channel_name: Mapped[str] = mapped_column(String(50))
    account_key: Mapped[str] = mapped_column(String(64))
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    token_encrypted: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(TZ)
    refreshed_at: Mapped[datetime | None] = mapped_column(TZ)
    retry_not_before: Mapped[datetime | None] = mapped_column(TZ)
    exchange_count: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    updated_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))


class ChannelPullLease(Base):
    """Which scheduled pull holds a channel now (issue 13): one row per channel while a batch
    run pulls it, taken and renewed in one statement per batch, expiring on its own when the
    holder died (db/repositories/pull_leases.py). Replaces a Prefect concurrency slot per
    channel, which cost API calls per channel per minute."""

    __tablename__ = "channel_pull_leases"

    channel_id: Mapped[int] = mapped_column(
        ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True
    )
    holder: Mapped[str] = mapped_column(String(100))
    acquired_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))
    expires_at: Mapped[datetime] = mapped_column(TZ)


class ChannelPushLease(Base):
    """Which ARI push holds a channel's month now: a push reads the delta, sends it and
    records what the partner accepted under the leases of the months it covers, so two
    processes never push the same night side by side (the older value could land last while
    the newer one is recorded as acknowledged). Renewed while the push runs, expiring on its
    own when the holder died (db/repositories/push_leases.py)."""

    __tablename__ = "channel_push_leases"

    channel_id: Mapped[int] = mapped_column(
        ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True
    )
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    holder: Mapped[str] = mapped_column(String(100))
    acquired_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))
    expires_at: Mapped[datetime] = mapped_column(TZ)


class UnroutableReservation(Base):
    """A reservation an account-wide pull returned for a hotel code no channel of the account
    maps (issue 13). Stored for operators (GET /api/partner-accounts/{id}/unroutable) and
    never acknowledged, so the partner falls back to its e-mail delivery as it intends.
    Identifiers only: no guest or card data."""

    __tablename__ = "unroutable_reservations"
    __table_args__ = (UniqueConstraint("account_id", "hotel_code", "external_id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("partner_accounts.id", ondelete="CASCADE"), index=True
    )
    hotel_code: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(128))
    event: Mapped[str] = mapped_column(String(16))
    check_in: Mapped[date | None] = mapped_column(Date)
    check_out: Mapped[date | None] = mapped_column(Date)
    first_seen_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))
    last_seen_at: Mapped[datetime] = mapped_column(TZ, server_default=text("now()"))
    times_seen: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
