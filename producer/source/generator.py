"""Deterministic randomuser-shaped users: the same (seed, page, index, nat choice) gives the same user.

Each user gets its own random.Random seeded from (seed, page, index); Faker is reseeded from it, so a user
does not depend on the users before it, on threads, or on the process (str seeds hash with SHA-512).
"""

from __future__ import annotations

import hashlib
import string
import threading
import unicodedata
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from random import Random
from typing import Any, Final

from faker import Faker

from producer.config import NATIONALITIES

FIELDS: Final = (
    "gender",
    "name",
    "location",
    "email",
    "login",
    "registered",
    "dob",
    "phone",
    "cell",
    "id",
    "picture",
    "nat",
)

# Faker locale per randomuser nationality (Faker has no Serbian-in-Serbia locale: Croatian is the closest
# Latin-script one).
LOCALES: Final = {
    "AU": "en_AU",
    "BR": "pt_BR",
    "CA": "en_CA",
    "CH": "de_CH",
    "DE": "de_DE",
    "DK": "da_DK",
    "ES": "es_ES",
    "FI": "fi_FI",
    "FR": "fr_FR",
    "GB": "en_GB",
    "IE": "en_IE",
    "IN": "en_IN",
    "IR": "fa_IR",
    "MX": "es_MX",
    "NL": "nl_NL",
    "NO": "no_NO",
    "NZ": "en_NZ",
    "RS": "hr_HR",
    "TR": "tr_TR",
    "UA": "uk_UA",
    "US": "en_US",
}
COUNTRIES: Final = {
    "AU": "Australia",
    "BR": "Brazil",
    "CA": "Canada",
    "CH": "Switzerland",
    "DE": "Germany",
    "DK": "Denmark",
    "ES": "Spain",
    "FI": "Finland",
    "FR": "France",
    "GB": "United Kingdom",
    "IE": "Ireland",
    "IN": "India",
    "IR": "Iran",
    "MX": "Mexico",
    "NL": "Netherlands",
    "NO": "Norway",
    "NZ": "New Zealand",
    "RS": "Serbia",
    "TR": "Turkey",
    "UA": "Ukraine",
    "US": "United States",
}
# Regions for locales where Faker has no state/administrative unit.
REGIONS: Final = {
    "NO": ("Oslo", "Viken", "Vestland", "Rogaland", "Trøndelag", "Nordland", "Innlandet", "Agder"),
    "NZ": ("Auckland", "Wellington", "Canterbury", "Otago", "Waikato", "Northland", "Southland", "Tasman"),
    "UA": ("Kyivska", "Lvivska", "Odeska", "Kharkivska", "Dnipropetrovska", "Poltavska", "Volynska"),
    "GB": ("England", "Scotland", "Wales", "Northern Ireland"),
    "IE": ("Leinster", "Munster", "Connacht", "Ulster"),
    "RS": ("Beograd", "Vojvodina", "Šumadija", "Zlatibor", "Nišava", "Raška", "Mačva"),
}
# Identity document per nationality (name, digits); without one: {"name": "", "value": null}.
ID_KINDS: Final = {
    "AU": ("TFN", 9),
    "BR": ("CPF", 11),
    "CA": ("SIN", 9),
    "CH": ("AVS", 13),
    "DE": ("SVNR", 12),
    "DK": ("CPR", 10),
    "ES": ("DNI", 8),
    "FI": ("HETU", 10),
    "FR": ("INSEE", 15),
    "GB": ("NINO", 8),
    "IN": ("UIDAI", 12),
    "MX": ("NSS", 11),
    "NL": ("BSN", 9),
    "NO": ("FN", 11),
    "RS": ("SID", 13),
    "UA": ("", 0),
    "US": ("SSN", 9),
    "NZ": ("", 0),
    "IE": ("PPS", 7),
    "IR": ("", 0),
    "TR": ("", 0),
}
# Postcodes the real API gives as numbers (nationalities with all-digit codes).
NUMERIC_POSTCODES: Final = frozenset(
    {"AU", "BR", "CH", "DE", "DK", "ES", "FI", "FR", "IN", "IR", "MX", "NO", "NZ", "RS", "TR", "UA", "US"}
)
TIMEZONES: Final = (
    ("-12:00", "Eniwetok, Kwajalein"),
    ("-11:00", "Midway Island, Samoa"),
    ("-10:00", "Hawaii"),
    ("-9:00", "Alaska"),
    ("-8:00", "Pacific Time (US & Canada)"),
    ("-7:00", "Mountain Time (US & Canada)"),
    ("-6:00", "Central Time (US & Canada), Mexico City"),
    ("-5:00", "Eastern Time (US & Canada), Bogota, Lima"),
    ("-4:00", "Atlantic Time (Canada), Caracas, La Paz"),
    ("-3:30", "Newfoundland"),
    ("-3:00", "Brazil, Buenos Aires, Georgetown"),
    ("-2:00", "Mid-Atlantic"),
    ("-1:00", "Azores, Cape Verde Islands"),
    ("0:00", "Western Europe Time, London, Lisbon, Casablanca"),
    ("+1:00", "Brussels, Copenhagen, Madrid, Paris"),
    ("+2:00", "Kaliningrad, South Africa"),
    ("+3:00", "Baghdad, Riyadh, Moscow, St. Petersburg"),
    ("+3:30", "Tehran"),
    ("+4:00", "Abu Dhabi, Muscat, Baku, Tbilisi"),
    ("+5:00", "Ekaterinburg, Islamabad, Karachi, Tashkent"),
    ("+5:30", "Bombay, Calcutta, Madras, New Delhi"),
    ("+6:00", "Almaty, Dhaka, Colombo"),
    ("+7:00", "Bangkok, Hanoi, Jakarta"),
    ("+8:00", "Beijing, Perth, Singapore, Hong Kong"),
    ("+9:00", "Tokyo, Seoul, Osaka, Sapporo, Yakutsk"),
    ("+9:30", "Adelaide, Darwin"),
    ("+10:00", "Eastern Australia, Guam, Vladivostok"),
    ("+11:00", "Magadan, Solomon Islands, New Caledonia"),
    ("+12:00", "Auckland, Wellington, Fiji, Kamchatka"),
)
WORDS_A: Final = (
    "angry",
    "big",
    "black",
    "blue",
    "brown",
    "crazy",
    "golden",
    "green",
    "happy",
    "heavy",
    "lazy",
    "orange",
    "organic",
    "purple",
    "red",
    "sad",
    "silver",
    "small",
    "tiny",
    "white",
)
WORDS_B: Final = (
    "bear",
    "bird",
    "butterfly",
    "cat",
    "dog",
    "duck",
    "elephant",
    "fish",
    "frog",
    "goose",
    "gorilla",
    "koala",
    "leopard",
    "lion",
    "ostrich",
    "panda",
    "peacock",
    "rabbit",
    "swan",
    "tiger",
    "wolf",
    "zebra",
)
PASSWORDS: Final = (
    "sunshine",
    "dragon",
    "monkey",
    "letmein",
    "shadow",
    "master",
    "qwerty",
    "football",
    "baseball",
    "welcome",
    "trustno1",
    "starwars",
    "hello",
    "freedom",
    "whatever",
    "pepper",
)
# As the real API: births until 21 years before this instant, registrations between 2002 and it.
CONSTANT_TIME: Final = 1653344189
DOB_RANGE: Final = (-800_000_000, CONSTANT_TIME - 86400 * 365 * 21)
REGISTERED_RANGE: Final = (1_016_688_461, CONSTANT_TIME)
SALT_CHARS: Final = string.ascii_letters + string.digits


def user_rng(seed: str, page: int, index: int) -> Random:
    return Random(f"correnteza|{seed}|{page}|{index}")


def iso_ms(epoch: int, millis: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis:03d}Z"


def years_since(epoch: int, now: datetime) -> int:
    then = datetime.fromtimestamp(epoch, UTC)
    return now.year - then.year - ((now.month, now.day) < (then.month, then.day))


def ascii_word(text: str) -> str:
    flat = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in flat.lower() if ch.isalnum())


def digits(rng: Random, count: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(count))


class UserGenerator:
    """Thread-safe: one Faker per locale shared by the server's per-request threads, each under a lock."""

    def __init__(self) -> None:
        self._fakers: dict[str, tuple[Faker, threading.Lock]] = {}
        self._create_lock = threading.Lock()

    def _faker(self, nat: str) -> tuple[Faker, threading.Lock]:
        with self._create_lock:
            if nat not in self._fakers:
                self._fakers[nat] = (Faker(LOCALES.get(nat, "en_US")), threading.Lock())
            return self._fakers[nat]

    def warm_up(self) -> None:
        """Build every locale's Faker now rather than on the first requests."""
        for nat in NATIONALITIES:
            self._faker(nat)

    @staticmethod
    def _region(fake: Faker, nat: str, rng: Random) -> str:
        if nat in REGIONS:
            return rng.choice(REGIONS[nat])
        for provider in ("state", "administrative_unit", "region"):
            method = getattr(fake, provider, None)
            if method is not None:
                return str(method())
        return str(fake.city())

    @staticmethod
    def _postcode(fake: Faker, nat: str, rng: Random) -> int | str:
        code = str(fake.postcode())
        if nat in NUMERIC_POSTCODES:
            plain = code.replace(" ", "").replace("-", "")
            return int(plain) if plain.isdigit() and not plain.startswith("0") else rng.randint(10000, 99999)
        return code

    def user(self, seed: str, page: int, index: int, nats: Sequence[str] | None = None) -> dict[str, Any]:
        """The user at (seed, page, index); nats restricts the nationality (None: any of the API's)."""
        rng = user_rng(seed, page, index)
        nat = rng.choice(tuple(nats) if nats else NATIONALITIES)
        fake, lock = self._faker(nat)
        with lock:
            fake.seed_instance(rng.getrandbits(64))
            return self._build(fake, nat, rng)

    def _build(self, fake: Faker, nat: str, rng: Random) -> dict[str, Any]:
        now = datetime.now(UTC)
        gender = rng.choice(("male", "female"))
        first = fake.first_name_male() if gender == "male" else fake.first_name_female()
        last = fake.last_name()
        password = rng.choice(PASSWORDS)
        salt = "".join(rng.choice(SALT_CHARS) for _ in range(8))
        salted = (password + salt).encode()
        dob = rng.randint(*DOB_RANGE)
        registered = rng.randint(*REGISTERED_RANGE)
        picture_id = rng.randint(0, 99 if gender == "male" else 96)
        folder = "men" if gender == "male" else "women"
        offset, description = rng.choice(TIMEZONES)
        id_name, id_len = ID_KINDS.get(nat, ("", 0))
        email_local = (
            ".".join(w for w in (ascii_word(first), ascii_word(last)) if w) or f"user{rng.randint(1, 99999)}"
        )
        return {
            "gender": gender,
            "name": {
                "title": "Mr" if gender == "male" else rng.choice(("Ms", "Mrs", "Miss")),
                "first": first,
                "last": last,
            },
            "location": {
                "street": {"number": rng.randint(1, 9999), "name": str(fake.street_name())},
                "city": str(fake.city()),
                "state": self._region(fake, nat, rng),
                "country": COUNTRIES[nat],
                "postcode": self._postcode(fake, nat, rng),
                "coordinates": {
                    "latitude": f"{rng.uniform(-90, 90):.4f}",
                    "longitude": f"{rng.uniform(-180, 180):.4f}",
                },
                "timezone": {"offset": offset, "description": description},
            },
            "email": f"{email_local}@example.com",
            "login": {
                "uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "username": f"{rng.choice(WORDS_A)}{rng.choice(WORDS_B)}{rng.randint(100, 999)}",
                "password": password,
                "salt": salt,
                "md5": hashlib.md5(salted, usedforsecurity=False).hexdigest(),
                "sha1": hashlib.sha1(salted, usedforsecurity=False).hexdigest(),
                "sha256": hashlib.sha256(salted).hexdigest(),
            },
            "dob": {"date": iso_ms(dob, rng.randint(0, 999)), "age": years_since(dob, now)},
            "registered": {
                "date": iso_ms(registered, rng.randint(0, 999)),
                "age": years_since(registered, now),
            },
            "phone": str(fake.phone_number()),
            "cell": str(fake.phone_number()),
            "id": {"name": id_name, "value": digits(rng, id_len) if id_len else None},
            "picture": {
                "large": f"https://randomuser.me/api/portraits/{folder}/{picture_id}.jpg",
                "medium": f"https://randomuser.me/api/portraits/med/{folder}/{picture_id}.jpg",
                "thumbnail": f"https://randomuser.me/api/portraits/thumb/{folder}/{picture_id}.jpg",
            },
            "nat": nat,
        }

    def page(
        self,
        seed: str,
        page: int,
        results: int,
        nats: Sequence[str] | None = None,
        fields: Sequence[str] = FIELDS,
    ) -> list[dict[str, Any]]:
        """A page of users with only `fields` (the API's inc/exc applied after generation)."""
        keep = set(fields)
        users = []
        for index in range(results):
            user = self.user(seed, page, index, nats)
            users.append({k: v for k, v in user.items() if k in keep})
        return users
