"""Signing in by SMS code, sessions, and registration."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from protocols import appointment as ap

from ..store import Store

if TYPE_CHECKING:
    pass

from .core import (
    SENT_CODE,
    Base,
    Customer,
    _one,
    _sha,
    log,
    refused,
)


class SignIn(Base):
    """Signing in by SMS code, sessions, and registration."""

    # --- signing in ------------------------------------------------------------------------

    async def send_code(self, phone_text: str) -> dict[str, Any]:
        """Text a one-time sign-in code to a mobile number (at most one per minute)."""
        phone = ap.parse_phone(phone_text)
        code = f"{secrets.randbelow(10 ** 6):06d}"
        await self.pool.run(self._save_code, self.vault.digest(phone), phone, code)
        minutes = max(1, round(self.settings.login_code_ttl_s / 60))
        await self.sms.send(phone, SENT_CODE.format(code=code, minutes=minutes))
        return {"sent": True, "to": ap.mask_phone(phone), "expires_in": minutes * 60}

    def _save_code(self, st: Store, phone_digest: str, phone: str, code: str) -> None:
        now, s = self.clock(), self.settings
        row = _one(st, "SELECT sent_at FROM login_codes WHERE phone_digest = ?", (phone_digest,))
        if row is not None and now - row["sent_at"] < s.login_code_every_s:
            raise refused("code_too_soon", wait=int(s.login_code_every_s - (now - row["sent_at"])
                                                    + 1))
        st.execute("INSERT INTO login_codes (phone_digest, code_digest, sent_at, expires_at, "
                   "attempts) VALUES (?, ?, ?, ?, 0) ON CONFLICT (phone_digest) DO UPDATE SET "
                   "code_digest = excluded.code_digest, sent_at = excluded.sent_at, "
                   "expires_at = excluded.expires_at, attempts = 0",
                   (phone_digest, self.vault.digest(f"{phone}|{code}"), now,
                    now + s.login_code_ttl_s))

    async def sign_in(self, phone_text: str, code: str) -> dict[str, Any]:
        """Check the code; a session token (and whether the customer is registered)."""
        phone = ap.parse_phone(phone_text)
        token = secrets.token_urlsafe(32)
        registered = await self.pool.run(self._sign_in, phone, code.strip(), token)
        if registered is None:  # the wrong attempt is counted (committed) first
            raise refused("code_wrong")
        return {"token": token, "registered": registered, "phone": ap.mask_phone(phone)}

    def _sign_in(self, st: Store, phone: str, code: str, token: str) -> bool | None:
        now, digest = self.clock(), self.vault.digest(phone)
        row = _one(st, "SELECT code_digest, expires_at, attempts FROM login_codes "
                       "WHERE phone_digest = ?", (digest,))
        if row is None or now > row["expires_at"] or row["attempts"] >= \
                self.settings.login_attempts:
            return None
        if not secrets.compare_digest(row["code_digest"], self.vault.digest(f"{phone}|{code}")):
            st.execute("UPDATE login_codes SET attempts = attempts + 1 WHERE phone_digest = ?",
                       (digest,))
            return None
        st.execute("DELETE FROM login_codes WHERE phone_digest = ?", (digest,))
        st.execute("INSERT INTO customer_sessions (token_digest, phone_digest, phone_sealed, "
                   "created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                   (_sha(token), digest, self.vault.seal(phone, "phone"), now,
                    now + self.settings.session_days * 86400))
        return _one(st, "SELECT id FROM customers WHERE phone_digest = ?", (digest,)) is not None

    async def customer(self, token: str | None) -> Customer:
        """The customer of a session token; :class:`CustomerRefused` ``not_logged_in``."""
        if not token:
            raise refused("not_logged_in")
        digest = _sha(token)
        found = self._sessions.fresh(digest)
        if found is None:
            found = await self.pool.read(self._session, digest)
            if found is not None and found.id is not None:  # registered: stable for a while
                self._sessions.keep(digest, found)
        if found is None:
            raise refused("not_logged_in")
        return found

    def _session(self, st: Store, token_digest: str) -> Customer | None:
        row = _one(st, "SELECT s.phone_digest, s.phone_sealed, s.expires_at, c.id, c.name FROM "
                       "customer_sessions s LEFT JOIN customers c ON c.phone_digest = "
                       "s.phone_digest WHERE s.token_digest = ?", (token_digest,))
        if row is None or row["expires_at"] < self.clock():
            return None
        return Customer(row["phone_digest"], self.vault.open(row["phone_sealed"], "phone"),
                        row["id"], row["name"])

    async def customer_by_phone(self, phone: str) -> Customer:
        """The customer an SMS comes from (the gateway vouches for the sender)."""
        number = ap.parse_phone(phone)
        digest = self.vault.digest(number)
        row = await self.pool.read(lambda st: _one(
            st, "SELECT id, name FROM customers WHERE phone_digest = ?", (digest,)))
        return Customer(digest, number, row["id"] if row else None, row["name"] if row else None)

    async def sign_out(self, token: str) -> None:
        self._sessions.pop(_sha(token), None)
        await self.pool.run(lambda st: st.execute(
            "DELETE FROM customer_sessions WHERE token_digest = ?", (_sha(token),)))

    # --- registration --------------------------------------------------------------------

    async def register(self, who: Customer, name: str, gender: str | None, id_text: str,
                       card: str | None = None) -> dict[str, Any]:
        """Register the signed-in phone: name, gender (checked against the ID), ID number."""
        from protocols.cards import CardError, parse_ic

        name = " ".join(name.split())
        if not 1 <= len(name) <= 20:
            raise refused("bad_name")
        person = ap.parse_id(id_text)
        sex = "M" if person.male else "F"
        if gender not in (None, "", sex):
            raise refused("gender_mismatch")
        card_number = None
        if card:
            try:
                card_number = parse_ic(card).number
            except CardError:
                raise refused("bad_card") from None
        return await self.pool.run(self._register, who, name, sex, person.number, card_number)

    def _register(self, st: Store, who: Customer, name: str, sex: str, number: str,
                  card: str | None) -> dict[str, Any]:
        v = self.vault
        clash = _one(st, "SELECT id FROM customers WHERE phone_digest = ? OR id_digest = ?",
                     (who.phone_digest, v.digest(number)))
        if clash is not None:
            raise refused("already_registered")
        cid = "c" + secrets.token_hex(8)
        st.execute(
            "INSERT INTO customers (id, name, gender, phone_digest, phone_sealed, phone_masked, "
            "id_digest, id_sealed, id_masked, id_region, id_tail, card_digest, card_sealed, "
            "card_masked, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (cid, name, sex, who.phone_digest, v.seal(who.phone, "phone"),
             ap.mask_phone(who.phone), v.digest(number),
             v.seal(number, "id_number"), ap.mask_number(number), number[:6], number[-4:],
             v.digest(card) if card else None, v.seal(card, "card") if card else None,
             ap.mask_number(card) if card else None, self.clock()))
        log.info("customer %s registered (ID %s)", cid, ap.mask_number(number))
        return self._profile(st, cid)

    def _profile(self, st: Store, cid: str) -> dict[str, Any]:
        row = _one(st, "SELECT id, name, gender, phone_masked AS phone, id_masked AS id_number, "
                       "card_masked AS card, created_at FROM customers WHERE id = ?", (cid,))
        assert row is not None
        return row

    async def profile(self, who: Customer) -> dict[str, Any]:
        if who.id is None:
            raise refused("not_registered")
        cid = who.id
        return await self.pool.read(lambda st: self._profile(st, cid))

