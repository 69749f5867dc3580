"""The shop's operational database, generated: customers, products and orders.

    python examples/shop/prepare.py                 # day 1: creates data/shop.db (SQLite)
    python examples/shop/prepare.py --day 2         # the next day's changes, applied to it
    python examples/shop/prepare.py --postgres URL  # the same, into a PostgreSQL database

Deterministic (a fixed seed): the same rows every time, in SQLite and in PostgreSQL. Day 1 is
March 2024: 800 customers, 120 products, 4,000 orders; some fields are NULL (phone, city,
weight, discount, shipped_at). Day 2 (2024-04-01) changes what a shop's day changes: orders
move on (paid → shipped → delivered, some cancelled or returned), new orders and customers
arrive, customers edit their details, prices change, and a few rows are deleted (test orders,
a customer who closed the account, discontinued products). Every change sets ``updated_at``.

``--postgres`` needs psycopg (``pip install 'psycopg[binary]'``; weir's dev group has it).
The URL may hold ``${env:NAME}`` for its password, as weir's files do.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sqlite3
import sys
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SEED = 20240301
DAY1 = datetime(2024, 3, 1)
DAY2 = datetime(2024, 4, 1)
STATUSES = ("placed", "paid", "shipped", "delivered", "cancelled", "returned")
CATEGORIES = ("books", "garden", "kitchen", "outdoor", "toys")
COUNTRIES = (
    ("FR", ("Lyon", "Paris", "Nantes")),
    ("DE", ("Berlin", "Köln")),
    ("NL", ("Utrecht",)),
    ("ES", ("Madrid", "Sevilla")),
    ("IT", ("Torino", "Bologna")),
)
FIRST = ("Ada", "Ben", "Chloé", "Dara", "Emil", "Fatou", "Gus", "Hana", "Ivo", "Jon", "Kim", "Léa")
LAST = ("Martin", "Dubois", "Müller", "Rossi", "García", "de Vries", "Novak", "Okafor", "Lind")
WORDS = ("oak", "steel", "linen", "cedar", "stone", "wool", "clay", "brass", "pine", "cork")
ITEMS = {
    "books": ("atlas", "cookbook", "novel"),
    "garden": ("trowel", "planter", "hose"),
    "kitchen": ("pan", "knife", "board"),
    "outdoor": ("tent", "lamp", "chair"),
    "toys": ("kite", "puzzle", "blocks"),
}

SQLITE_DDL = f"""
CREATE TABLE customers (
    customer_id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, full_name TEXT NOT NULL,
    phone TEXT, country TEXT NOT NULL, city TEXT, signup_date DATE NOT NULL,
    marketing_opt_in BOOLEAN NOT NULL, updated_at TIMESTAMP NOT NULL);
CREATE TABLE products (
    product_id INTEGER PRIMARY KEY, sku TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
    category TEXT NOT NULL CHECK (category IN ({", ".join(f"'{c}'" for c in CATEGORIES)})),
    unit_price DECIMAL(10,2) NOT NULL, weight_kg REAL, active BOOLEAN NOT NULL,
    updated_at TIMESTAMP NOT NULL);
CREATE TABLE orders (
    order_id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, product_id INTEGER NOT NULL,
    quantity INTEGER NOT NULL, unit_price DECIMAL(10,2) NOT NULL, discount DECIMAL(4,2),
    status TEXT NOT NULL CHECK (status IN ({", ".join(f"'{s}'" for s in STATUSES)})),
    ordered_at TIMESTAMP NOT NULL, shipped_at TIMESTAMP, updated_at TIMESTAMP NOT NULL);
CREATE INDEX orders_updated_at ON orders (updated_at);
"""
POSTGRES_DDL = f"""
DROP TABLE IF EXISTS orders, products, customers;
DROP TYPE IF EXISTS order_status;
CREATE TYPE order_status AS ENUM ({", ".join(f"'{s}'" for s in STATUSES)});
CREATE TABLE customers (
    customer_id bigint PRIMARY KEY, email text NOT NULL UNIQUE, full_name text NOT NULL,
    phone text, country char(2) NOT NULL, city text, signup_date date NOT NULL,
    marketing_opt_in boolean NOT NULL, updated_at timestamp NOT NULL);
COMMENT ON COLUMN customers.email IS 'Login e-mail, lower case';
CREATE TABLE products (
    product_id bigint PRIMARY KEY, sku text NOT NULL UNIQUE, name text NOT NULL,
    category text NOT NULL CHECK (category IN ({", ".join(f"'{c}'" for c in CATEGORIES)})),
    unit_price numeric(10,2) NOT NULL, weight_kg double precision, active boolean NOT NULL,
    updated_at timestamp NOT NULL);
CREATE TABLE orders (
    order_id bigint PRIMARY KEY, customer_id bigint NOT NULL, product_id bigint NOT NULL,
    quantity integer NOT NULL, unit_price numeric(10,2) NOT NULL, discount numeric(4,2),
    status order_status NOT NULL, ordered_at timestamp NOT NULL, shipped_at timestamp,
    updated_at timestamp NOT NULL);
CREATE INDEX orders_updated_at ON orders (updated_at);
"""
COLUMNS = {
    "customers": (
        "customer_id",
        "email",
        "full_name",
        "phone",
        "country",
        "city",
        "signup_date",
        "marketing_opt_in",
        "updated_at",
    ),
    "products": (
        "product_id",
        "sku",
        "name",
        "category",
        "unit_price",
        "weight_kg",
        "active",
        "updated_at",
    ),
    "orders": (
        "order_id",
        "customer_id",
        "product_id",
        "quantity",
        "unit_price",
        "discount",
        "status",
        "ordered_at",
        "shipped_at",
        "updated_at",
    ),
}
Row = dict[str, Any]
Change = tuple[str, str, Any]
"""(``insert`` | ``update`` | ``delete``, table, a row or a key)."""


def _at(rng: random.Random, start: datetime, days: float) -> datetime:
    return start + timedelta(seconds=rng.randrange(int(days * 86400)))


def customer(rng: random.Random, cid: int, start: datetime, days: float) -> Row:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    country, cities = rng.choice(COUNTRIES)
    signed = _at(rng, start, days)
    return {
        "customer_id": cid,
        "email": f"{first}.{last}.{cid}@example.com".lower().replace(" ", ""),
        "full_name": f"{first} {last}",
        "phone": None
        if rng.random() < 0.4
        else f"+{rng.randrange(30, 49)} {rng.randrange(10**8, 10**9)}",
        "country": country,
        "city": None if rng.random() < 0.1 else rng.choice(cities),
        "signup_date": signed.date(),
        "marketing_opt_in": rng.random() < 0.35,
        "updated_at": signed,
    }


def product(rng: random.Random, pid: int, at: datetime) -> Row:
    category = rng.choice(CATEGORIES)
    return {
        "product_id": pid,
        "sku": f"{category[:3].upper()}-{pid:05d}",
        "name": f"{rng.choice(WORDS)} {rng.choice(ITEMS[category])}",
        "category": category,
        "unit_price": Decimal(rng.randrange(199, 25000)) / 100,
        "weight_kg": None if rng.random() < 0.15 else round(rng.uniform(0.05, 12.0), 3),
        "active": rng.random() > 0.05,
        "updated_at": at,
    }


def order(
    rng: random.Random, oid: int, at: datetime, customers: list[int], products: dict[int, Row]
) -> Row:
    pid = rng.choice(sorted(products))
    return {
        "order_id": oid,
        "customer_id": rng.choice(customers),
        "product_id": pid,
        "quantity": rng.choice((1, 1, 1, 1, 2, 2, 3, 5)),
        "unit_price": products[pid]["unit_price"],
        "discount": None if rng.random() < 0.8 else Decimal(rng.choice((5, 10, 15, 20))) / 100,
        "status": "placed",
        "ordered_at": at,
        "shipped_at": None,
        "updated_at": at,
    }


def _advance(rng: random.Random, row: Row, now: datetime) -> Row:
    """The order's next status, at ``now``."""
    status = row["status"]
    step = {
        "placed": ("paid", "paid", "paid", "cancelled"),
        "paid": ("shipped",),
        "shipped": ("delivered", "delivered", "delivered", "returned"),
    }.get(status)
    if not step:
        return row
    new = {**row, "status": rng.choice(step), "updated_at": now}
    if new["status"] == "shipped":
        new["shipped_at"] = now
    return new


def day1() -> dict[str, list[Row]]:
    rng = random.Random(SEED)
    customers = [customer(rng, cid, DAY1 - timedelta(days=400), 425) for cid in range(1, 801)]
    products = {
        pid: product(rng, pid, DAY1 - timedelta(days=rng.randrange(30, 300)))
        for pid in range(1, 121)
    }
    ids = [c["customer_id"] for c in customers]
    orders = []
    for oid in range(1, 4001):
        row = order(rng, oid, _at(rng, DAY1, 30.5), ids, products)
        age = (DAY2 - row["ordered_at"]).days
        for _ in range(min(3, age // 3)):  # older orders have moved on
            row = _advance(
                rng,
                row,
                min(
                    row["updated_at"] + timedelta(hours=rng.randrange(6, 72)),
                    DAY2 - timedelta(minutes=1),
                ),
            )
        orders.append(row)
    return {"customers": customers, "products": list(products.values()), "orders": orders}


def day2(before: dict[str, list[Row]]) -> list[Change]:
    """The changes of 2024-04-01, in the order they happen."""
    rng = random.Random(SEED + 1)
    changes: list[Change] = []
    moments = iter(sorted(_at(rng, DAY2, 0.99) for _ in range(2000)))
    customers = {c["customer_id"]: c for c in before["customers"]}
    products = {p["product_id"]: p for p in before["products"]}
    for pid in rng.sample(sorted(products), 10):  # price changes
        new = {
            **products[pid],
            "unit_price": (products[pid]["unit_price"] * Decimal("1.08")).quantize(Decimal("0.01")),
            "updated_at": next(moments),
        }
        changes.append(("update", "products", new))
        products[pid] = new
    for pid in range(121, 124):
        products[pid] = product(rng, pid, next(moments))
        changes.append(("insert", "products", products[pid]))
    for cid in rng.sample(sorted(customers), 25):  # details edited
        new = {
            **customers[cid],
            "phone": f"+33 {rng.randrange(10**8, 10**9)}",
            "marketing_opt_in": not customers[cid]["marketing_opt_in"],
            "updated_at": next(moments),
        }
        changes.append(("update", "customers", new))
    for cid in range(801, 831):
        changes.append(("insert", "customers", customer(rng, cid, DAY2, 0.99)))
    ordered = {o["customer_id"] for o in before["orders"]}
    closed = sorted(set(customers) - ordered)[:5]  # accounts closed, never ordered
    changes += [("delete", "customers", cid) for cid in closed]
    ids = [cid for cid in range(1, 831) if cid not in closed]
    open_orders = [o for o in before["orders"] if o["status"] in ("placed", "paid", "shipped")]
    for row in rng.sample(open_orders, min(300, len(open_orders))):
        changes.append(("update", "orders", _advance(rng, row, next(moments))))
    for oid in range(4001, 4151):
        changes.append(("insert", "orders", order(rng, oid, next(moments), ids, products)))
    for row in rng.sample([o for o in before["orders"] if o["status"] == "placed"], 20):
        changes.append(("delete", "orders", row["order_id"]))  # test orders, removed
    counts = {pid: 0 for pid in range(1, 121)}
    for o in before["orders"]:
        counts[o["product_id"]] += 1
    for pid in sorted(counts, key=lambda p: (counts[p], p))[:2]:  # discontinued, removed
        changes.append(("delete", "products", pid))
    return changes


# ---------------------------------------------------------------- writing
class Target:
    """SQLite (``sqlite3``) or PostgreSQL (psycopg): the same statements, their placeholders."""

    def __init__(self, postgres: str | None, path: Path):
        self.postgres = postgres is not None
        if postgres is not None:
            import psycopg

            self.con: Any = psycopg.connect(_env(postgres))
            self.mark = "%s"
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.con = sqlite3.connect(path)
            self.mark = "?"

    def create(self) -> None:
        if self.postgres:
            self.con.execute(POSTGRES_DDL)
        else:
            self.con.executescript(SQLITE_DDL)

    def apply(self, kind: str, table: str, value: Any) -> None:
        cols = COLUMNS[table]
        if kind == "delete":
            self._run(f"DELETE FROM {table} WHERE {cols[0]} = {self.mark}", [value])
        elif kind == "insert":
            marks = ", ".join([self.mark] * len(cols))
            self._run(
                f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})", self._values(value)
            )
        else:
            sets = ", ".join(f"{c} = {self.mark}" for c in cols[1:])
            values = self._values(value)
            self._run(
                f"UPDATE {table} SET {sets} WHERE {cols[0]} = {self.mark}", values[1:] + values[:1]
            )

    def max_order(self) -> int:
        cur = self.con.execute("SELECT max(order_id) FROM orders")
        return int(cur.fetchone()[0] or 0)

    def _run(self, sql: str, params: list[Any]) -> None:
        self.con.execute(sql, params)

    def _values(self, row: Row) -> list[Any]:
        if self.postgres:
            return list(row.values())
        return [_sqlite(v) for v in row.values()]


def _sqlite(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)  # SQLite's DECIMAL affinity stores a REAL; weir reads it exactly
    return value


def _env(url: str) -> str:
    def sub(match: re.Match[str]) -> str:
        if match[1] not in os.environ:
            sys.exit(f"prepare.py: the url reads ${{env:{match[1]}}}, which is not set")
        return os.environ[match[1]]

    return re.sub(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}", sub, url)


def prepare(day: int, *, db: Path, postgres: str | None = None) -> str:
    """Create the database (day 1) or apply day 2's changes; what was done, in a line."""
    if day == 1 and postgres is None and db.exists():
        db.unlink()
    target = Target(postgres, db)
    try:
        if day == 1:
            target.create()
            rows = day1()
            for table in ("customers", "products", "orders"):
                for row in rows[table]:
                    target.apply("insert", table, row)
            target.con.commit()
            return ", ".join(f"{len(r):,} {t}" for t, r in rows.items())
        if target.max_order() == 0:
            sys.exit("prepare.py: no day 1 yet; run without --day first")
        if target.max_order() > 4000:
            return "day 2 is applied already: nothing to do"
        changes = day2(day1())
        for kind, table, value in changes:
            target.apply(kind, table, value)
        target.con.commit()
        counts: dict[str, int] = {}
        for kind, _, _ in changes:
            counts[kind] = counts.get(kind, 0) + 1
        return ", ".join(f"{n} {k}s" for k, n in counts.items())
    finally:
        target.con.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--day",
        type=int,
        choices=(1, 2),
        default=1,
        help="1: create; 2: apply the next day's changes",
    )
    parser.add_argument(
        "--db", type=Path, default=HERE / "data" / "shop.db", help="the SQLite file"
    )
    parser.add_argument(
        "--postgres", metavar="URL", help="write into this PostgreSQL database instead"
    )
    args = parser.parse_args(argv)
    done = prepare(args.day, db=args.db, postgres=args.postgres)
    where = "PostgreSQL" if args.postgres else args.db
    print(f"day {args.day} → {where}: {done}")


if __name__ == "__main__":
    main()
