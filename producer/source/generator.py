"""Deterministic randomuser-shaped users: the same (seed, page, index, nat choice) gives the same user.

Each user gets its own random.Random seeded from (seed, page, index); Faker is reseeded from it, so a user
does not depend on the users before it, on threads, or on the process (str seeds hash with SHA-512).

Per-nationality quirks of the real API 1.4 are reproduced where public answers (and the API's own source,
RandomAPI/Randomuser.me-Node api/1.4) show them: each is marked "Quirk:" below and listed in README.md
("What the local source reproduces"). Names, streets and cities come from Faker; what the API's JSON types
and formats are (postcode, id, phone, title, e-mail, timezone) follows the real answers, not Faker.
"""

from __future__ import annotations

import hashlib
import string
import threading
import unicodedata
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
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
# Quirk (id.name): the identity document's name per nationality; IR, NZ, TR and UA have none: the real API
# answers {"name": "", "value": null} for them (an empty string, not a missing key; null, not "").
ID_NAMES: Final = {
    "AU": "TFN",
    "BR": "CPF",
    "CA": "SIN",
    "CH": "AVS",
    "DE": "SVNR",
    "DK": "CPR",
    "ES": "DNI",
    "FI": "HETU",
    "FR": "INSEE",
    "GB": "NINO",
    "IE": "PPS",
    "IN": "UIDAI",
    "IR": "",
    "MX": "NSS",
    "NL": "BSN",
    "NO": "FN",
    "NZ": "",
    "RS": "SID",
    "TR": "",
    "UA": "",
    "US": "SSN",
}
# Quirk (postcode type): the real API gives location.postcode as a JSON string for these nationalities
# (letters and spaces: CA "K1A 0B1", GB "SW1A 1AA", NL "1017 EX"; NO four digits kept with their leading
# zeros, "0051") and as a JSON number for every other one (so a leading zero can never appear there).
STRING_POSTCODES: Final = frozenset({"CA", "GB", "NL", "NO"})
# Quirk (postcode range): numbers from 10000 to 99999 (whatever the country's real codes look like), except
# AU 200..9999 (so three-digit Australian postcodes occur, e.g. 410) and CH 1000..9999.
NUMERIC_POSTCODE_RANGES: Final = {"AU": (200, 9999), "CH": (1000, 9999)}
DEFAULT_POSTCODE_RANGE: Final = (10000, 99999)
# Letters of GB postcodes' inward part (the API's own set: no C, I, K, M, O, V).
GB_INWARD_LETTERS: Final = "ABDEFGHJLNPQRSTUWXYZ"
# NINO letters: the first and the second prefix letter (uppercase in the answer).
NINO_FIRST: Final = "ABCEGHJKLMNOPRSTWXYZ"
NINO_SECOND: Final = "ABCEGHJKLMNPRSTWXYZ"
# German pension insurance area numbers, the first part of an SVNR.
SVNR_AREAS: Final = (
    "02", "03", "04", "08", "09", "10", "11", "12", "13", "14", "15", "16", "17", "18", "19", "20", "21",
    "23", "24", "25", "26", "28", "29", "38", "39", "40", "42", "43", "44", "45", "46", "47", "48", "49",
    "50", "51", "52", "53", "54", "55", "56", "57", "58", "59", "60", "61", "62", "63", "64", "65", "66",
    "67", "68", "69", "70", "71", "72", "73", "74", "75", "76", "77", "78", "79", "80", "81", "82", "89",
)  # fmt: skip
UPPER: Final = string.ascii_uppercase
# Quirk (name.title): Swiss users get French titles (Monsieur; Madame or Mademoiselle); others Mr or
# Miss/Mrs/Ms.
CH_TITLES: Final = ("Madame", "Mademoiselle")
FEMALE_TITLES: Final = ("Ms", "Mrs", "Miss")
# Quirk (trailing spaces): most Brazilian street names of the real API end with a space ("Rua Treze "), and
# about one Serbian street in seven does ("Leposave Milković  "); about one in a hundred Serbian street names
# writes the "lj" digraph with a Cyrillic capital Je, U+0408, after a Latin l ("l" + U+0408 for "lj"):
# mixed scripts in one word.
TRAILING_SPACE_SHARE: Final = {"BR": 0.7, "RS": 0.14}
RS_CYRILLIC_JE_SHARE: Final = 0.01
RS_JE_STREETS: Final = (
    "Dragoljuba Petrovića",
    "Ljubice Lukovića",
    "Ljubomira Nenadovića",
    "Vasilija Ljubića",
    "Kraljice Ljubice",
)
# Quirk (timezone): offsets are strings without a leading zero ("-3:30", "0:00", "+5:45"), from the API's own
# table of 31 (with Kabul's +4:30 and Kathmandu's +5:45), drawn independently of the nationality.
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
    ("+4:30", "Kabul"),
    ("+5:00", "Ekaterinburg, Islamabad, Karachi, Tashkent"),
    ("+5:30", "Bombay, Calcutta, Madras, New Delhi"),
    ("+5:45", "Kathmandu"),
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


# Letters NFKD does not reduce to ASCII (Nordic, German, Croatian, Turkish), as the e-mail writes them.
_EXTRA_LETTERS: Final = "øæœßđłıþð"
_EXTRA_LATIN: Final = ("o", "ae", "oe", "ss", "d", "l", "i", "th", "d")
# Ukrainian Cyrillic -> Latin, the way the real API's Ukrainian lists are written ("Harkivska", "Yuhimenko").
_UKRAINIAN_LETTERS: Final = "абвгґдеєжзиіїйклмнопрстуфхцчшщьюяъыэё'ʼ’"  # noqa: RUF001
_UKRAINIAN_LATIN: Final = (
    "a", "b", "v", "g", "g", "d", "e", "ye", "zh", "z", "i", "i", "yi", "y", "k", "l", "m", "n", "o", "p",
    "r", "s", "t", "u", "f", "h", "c", "ch", "sh", "shch", "", "yu", "ya", "", "y", "e", "yo", "", "", "",
)  # fmt: skip
# Persian script -> ASCII as the real API's e-mails show it: letter by letter, alef and unwritten vowels
# dropped (the real API writes the Iranian "Sam Nejati" as sm.njty@example.com).
_PERSIAN_LETTERS: Final = "اآأإبپتثجچحخدذرزژسشصضطظعغفقکكگلمنوهةیيئؤء‌"
_PERSIAN_LATIN: Final = (
    "", "a", "a", "a", "b", "p", "t", "s", "j", "ch", "h", "kh", "d", "z", "r", "z", "zh", "s", "sh", "s",
    "z", "t", "z", "a", "gh", "f", "q", "k", "k", "g", "l", "m", "n", "w", "h", "h", "y", "y", "y", "w",
    "", "",
)  # fmt: skip
TO_LATIN: Final = str.maketrans(
    dict(
        zip(
            _EXTRA_LETTERS + _UKRAINIAN_LETTERS + _PERSIAN_LETTERS,
            _EXTRA_LATIN + _UKRAINIAN_LATIN + _PERSIAN_LATIN,
            strict=True,
        )
    )
)
# Faker uk_UA's city kinds, which the real API's Ukrainian cities never carry.
UA_CITY_PREFIXES: Final = ("місто ", "село ", "селище міського типу ", "селище ", "смт ", "хутір ")


def to_latin(text: str) -> str:
    """Ukrainian Cyrillic in Latin letters, the first letter of each word kept capital."""
    return "".join(
        part.lower().translate(TO_LATIN).capitalize() if part[:1].isupper() else part.translate(TO_LATIN)
        for part in _words(text)
    )


def _words(text: str) -> list[str]:
    """text cut before and after every run of letters (so each word keeps its case on its own)."""
    parts: list[str] = []
    for ch in text:
        if parts and parts[-1][-1:].isalpha() == ch.isalpha():
            parts[-1] += ch
        else:
            parts.append(ch)
    return parts


def ascii_word(text: str) -> str:
    """Quirk (e-mail): always ASCII, whatever the name's script: transliterated (Persian, Cyrillic, Nordic),
    accents dropped, lowercase, spaces and punctuation removed ("Hans Jörg" -> "hansjorg")."""
    flat = unicodedata.normalize("NFKD", text.lower().translate(TO_LATIN)).encode("ascii", "ignore").decode()
    return "".join(ch for ch in flat if ch.isalnum())


def digits(rng: Random, count: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(count))


def letters(rng: Random, count: int, alphabet: str = UPPER) -> str:
    return "".join(rng.choice(alphabet) for _ in range(count))


def js_year(epoch: int) -> str:
    """JavaScript's Date.getYear() of the instant (UTC): the year minus 1900, so 2001 gives "101"."""
    return str(datetime.fromtimestamp(epoch, UTC).year - 1900)


def luhn_complete(body: str) -> str:
    """body plus the digit that makes the whole pass the Luhn check (the SIN's rule)."""
    total = 0
    for position, char in enumerate(reversed(body)):
        value = int(char) * (2 if position % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return body + str((10 - total % 10) % 10)


def us_ssn(rng: Random) -> str:
    """An SSN the Social Security Administration could issue (no 000, 666 or 9xx area, no 00 group, no 0000
    serial, none of the two advertised numbers)."""
    while True:
        area, group, serial = rng.randint(1, 899), rng.randint(1, 99), rng.randint(1, 9999)
        value = f"{area:03d}-{group:02d}-{serial:04d}"
        if area != 666 and value not in ("219-09-9999", "078-05-1120"):
            return value


def norwegian_fn(rng: Random, dob: datetime, gender: str) -> str:
    """Fødselsnummer: DDMMYY, an individual number (000-499 for the 1900s, 500-999 from 2000; odd for
    men), two mod-11 check digits; drawn again when a check digit is 10 or the last digit 0 (as the API)."""
    birth = dob.strftime("%d%m%y")
    while True:
        number = 499 - rng.randint(0, 499) if dob.year < 2000 else 999 - rng.randint(0, 499)
        if (number % 2 == 1) != (gender == "male"):
            number -= 1
        if number < 0:
            continue
        nine = f"{birth}{number:03d}"
        k1 = _mod11(nine, (3, 7, 6, 1, 8, 9, 4, 5, 2))
        if k1 == 10:
            continue
        k2 = _mod11(f"{nine}{k1}", (5, 4, 3, 2, 7, 6, 5, 4, 3, 2))
        if k2 not in (0, 10):
            return f"{nine}{k1}{k2}"


def _mod11(text: str, weights: tuple[int, ...]) -> int:
    rest = sum(w * int(c) for w, c in zip(weights, text, strict=True)) % 11
    return 0 if rest == 0 else 11 - rest


def id_value(nat: str, rng: Random, dob_epoch: int, gender: str, last: str) -> str | None:
    """Quirk (id.value): a string in the nationality's own format (spaces, dots, dashes, letters), or null
    where there is no document; FI's is the real API's broken HETU, "NaNNA" + 3 digits + "undefined" (its
    code reads the date of birth from the wrong field), which public 1.4 answers all show."""
    dob = datetime.fromtimestamp(dob_epoch, UTC)
    male = gender == "male"
    if nat == "AU":
        return digits(rng, 9)
    if nat == "BR":
        return f"{digits(rng, 3)}.{digits(rng, 3)}.{digits(rng, 3)}-{digits(rng, 2)}"
    if nat == "CA":
        return luhn_complete(digits(rng, 8))
    if nat == "CH":
        return f"756.{digits(rng, 4)}.{digits(rng, 4)}.{digits(rng, 2)}"
    if nat == "DE":
        serial = rng.randint(0, 49) if male else rng.randint(50, 99)
        initial = last[:1] or "X"
        area = rng.choice(SVNR_AREAS)
        return f"{area} {dob:%d%m}{js_year(dob_epoch)} {initial} {serial:02d}{rng.randint(0, 9)}"
    if nat == "DK":
        return f"{dob:%d%m}{js_year(dob_epoch)}-{digits(rng, 4)}"
    if nat == "ES":
        return f"{digits(rng, 8)}-{rng.choice(UPPER)}"
    if nat == "FI":
        parity = rng.choice("13579" if male else "02468")
        return f"NaNNA{digits(rng, 2)}{parity}undefined"
    if nat == "FR":
        # Quirk: INSEE as 1.4 writes it: sex, getYear() (3 digits from 2000), the 0-based month, 8 digits, a
        # space and the key 97 - n mod 97 (so "97" occurs, and "00" never).
        head = f"{1 if male else 2}{js_year(dob_epoch)}{dob.month - 1:02d}{digits(rng, 8)}"
        return f"{head} {97 - int(head) % 97:02d}"
    if nat == "GB":
        return f"{rng.choice(NINO_FIRST)}{rng.choice(NINO_SECOND)} {digits(rng, 2)} {digits(rng, 2)} " + (
            f"{digits(rng, 2)} {rng.choice(UPPER)}"
        )
    if nat == "IE":
        return f"{digits(rng, 7)}T"
    if nat == "IN":
        return digits(rng, 12)
    if nat == "MX":
        return f"{digits(rng, 2)} {digits(rng, 2)} {digits(rng, 2)} {digits(rng, 4)} {digits(rng, 1)}"
    if nat == "NL":
        return digits(rng, 8)
    if nat == "NO":
        return norwegian_fn(rng, dob, gender)
    if nat == "RS":
        return digits(rng, 9)
    if nat == "US":
        return us_ssn(rng)
    return None  # IR, NZ, TR, UA


def postcode(nat: str, rng: Random) -> int | str:
    """Quirk (postcode): the JSON type and format of the real API per nationality (see STRING_POSTCODES)."""
    if nat == "CA":
        return f"{rng.choice(UPPER)}{rng.randint(0, 9)}{rng.choice(UPPER)} {rng.randint(0, 9)}" + (
            f"{rng.choice(UPPER)}{rng.randint(0, 9)}"
        )
    if nat == "GB":
        outward = rng.choice(
            (
                f"{letters(rng, 1)}{digits(rng, 1)}",
                f"{letters(rng, 2)}{digits(rng, 1)}",
                f"{letters(rng, 1)}{digits(rng, 2)}",
                f"{letters(rng, 2)}{digits(rng, 2)}",
                f"{letters(rng, 2)}{digits(rng, 1)}{letters(rng, 1)}",
                f"{letters(rng, 1)}{digits(rng, 1)}{letters(rng, 1)}",
            )
        )
        return f"{outward} {digits(rng, 1)}{letters(rng, 2, GB_INWARD_LETTERS)}"
    if nat == "NL":
        return f"{rng.randint(1000, 9999)} {letters(rng, 2)}"
    if nat == "NO":
        return f"{rng.randint(1, 9999):04d}"  # a string: "0051" keeps its zeros
    low, high = NUMERIC_POSTCODE_RANGES.get(nat, DEFAULT_POSTCODE_RANGE)
    return rng.randint(low, high)


def phone(nat: str, rng: Random, cell: bool) -> str:
    """Quirk (phone, cell): each nationality's own format, as the real API writes it; CA and UA numbers hold
    letters ("U71 S11-3246", "(097) F56-5364")."""
    d = partial(digits, rng)
    if nat == "AU":
        return f"04{d(2)}-{d(3)}-{d(3)}" if cell else f"0{d(1)}-{d(4)}-{d(4)}"
    if nat == "BR":
        return f"({d(2)}) {d(4)}-{d(4)}"
    if nat == "CA":
        return f"{letters(rng, 1)}{d(2)} {letters(rng, 1)}{d(2)}-{d(4)}"
    if nat == "CH":
        return f"07{rng.randint(5, 9)} {d(3)} {d(2)} {d(2)}"
    if nat == "DE":
        return f"017{d(1)}-{d(7)}" if cell else f"0{d(3)}-{d(7)}"
    if nat == "DK":
        return d(8)
    if nat == "ES":
        return f"{6 if cell else 9}{d(2)}-{d(3)}-{d(3)}"
    if nat == "FI":
        return f"04{d(1)}-{d(3)}-{d(2)}-{d(2)}" if cell else f"0{rng.randint(2, 9)}-{d(3)}-{d(3)}"
    if nat == "FR":
        return (
            f"06-{d(2)}-{d(2)}-{d(2)}-{d(2)}" if cell else f"0{rng.randint(1, 5)}-{d(2)}-{d(2)}-{d(2)}-{d(2)}"
        )
    if nat == "GB":
        if cell:
            return f"07{d(3)} {d(6)}"
        return rng.choice(
            (f"01{d(3)} {d(5)}", f"01{d(3)} {d(6)}", f"011{d(1)} {d(3)} {d(4)}", f"02{d(1)} {d(4)} {d(4)}")
        )
    if nat == "IE":
        return f"081-{d(3)}-{d(4)}" if cell else f"0{rng.randint(1, 7)}1-{d(3)}-{d(4)}"
    if nat == "IN":
        return f"{rng.choice('789')}{d(9)}"
    if nat == "IR":
        return f"09{d(2)}-{d(3)}-{d(4)}" if cell else f"0{d(2)}-{d(8)}"
    if nat == "MX":
        return f"(6{d(2)}) {d(3)} {d(4)}"
    if nat == "NL":
        if cell:
            return f"(06) {d(8)}"
        return rng.choice((f"(0{d(2)}) {d(7)}", f"(0{d(3)}) {d(6)}"))
    if nat == "NO":
        return f"{rng.choice('49' if cell else '235678')}{d(7)}"
    if nat == "RS":
        return f"06{d(1)}-{d(4)}-{d(3)}" if cell else f"0{rng.randint(1, 3)}{d(1)}-{d(4)}-{d(3)}"
    if nat == "UA":
        return f"(0{rng.choice(('66', '67', '68', '96', '97', '98', '99'))}) {letters(rng, 1)}{d(2)}-{d(4)}"
    if nat == "US":
        return f"({rng.randint(2, 9)}{d(2)}) {rng.randint(2, 9)}{d(2)}-{d(4)}"
    return f"({d(3)})-{d(3)}-{d(4)}"  # NZ, TR


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
    def _street(fake: Faker, nat: str, rng: Random) -> str:
        name = str(fake.street_name())
        if nat == "UA":
            name = to_latin(name)
        if nat == "RS" and rng.random() < RS_CYRILLIC_JE_SHARE:
            name = rng.choice(RS_JE_STREETS).replace("lj", "l\u0408").replace("Lj", "L\u0408")
        if nat in TRAILING_SPACE_SHARE and rng.random() < TRAILING_SPACE_SHARE[nat]:
            name += " "
        return name

    @staticmethod
    def _city(fake: Faker, nat: str) -> str:
        city = str(fake.city())
        if nat == "UA":
            for prefix in UA_CITY_PREFIXES:
                city = city.removeprefix(prefix)
            city = to_latin(city)
        return city

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
        if nat == "UA":
            # Quirk (script): the real API writes Ukrainian users in Latin letters ("Radimira Lupiychuk");
            # Iranian ones stay in Persian script (names, streets, cities, states), Serbian ones in Latin
            # with diacritics (Jović, Čačak); Indian ones in Latin: no Devanagari in the real answers.
            first, last = to_latin(first), to_latin(last)
        if nat == "CH":
            title = "Monsieur" if gender == "male" else rng.choice(CH_TITLES)
        else:
            title = "Mr" if gender == "male" else rng.choice(FEMALE_TITLES)
        password = rng.choice(PASSWORDS)
        salt = "".join(rng.choice(SALT_CHARS) for _ in range(8))
        salted = (password + salt).encode()
        dob = rng.randint(*DOB_RANGE)
        registered = rng.randint(*REGISTERED_RANGE)
        picture_id = rng.randint(0, 99 if gender == "male" else 96)
        folder = "men" if gender == "male" else "women"
        offset, description = rng.choice(TIMEZONES)
        email_local = (
            ".".join(w for w in (ascii_word(first), ascii_word(last)) if w) or f"user{rng.randint(1, 99999)}"
        )
        return {
            "gender": gender,
            "name": {"title": title, "first": first, "last": last},
            "location": {
                # Quirk (street.number): a JSON integer, 1..9999.
                "street": {"number": rng.randint(1, 9999), "name": self._street(fake, nat, rng)},
                "city": self._city(fake, nat),
                "state": self._region(fake, nat, rng),
                "country": COUNTRIES[nat],
                "postcode": postcode(nat, rng),
                # Quirk (coordinates): strings with four decimals, unrelated to the country.
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
            "phone": phone(nat, rng, cell=False),
            "cell": phone(nat, rng, cell=True),
            "id": {"name": ID_NAMES[nat], "value": id_value(nat, rng, dob, gender, last)},
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
