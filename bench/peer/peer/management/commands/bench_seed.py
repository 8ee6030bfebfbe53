"""bench_seed --users N --password P [--email-prefix peer]

Creates users {prefix}{i}@bench.test for i in 0..N, each with a verified primary allauth
EmailAddress and an activated allauth TOTP authenticator whose secret the load generator can
derive: base32(SHA-256("usher-bench-totp-{i}")[:20]) (RFC 4648, uppercase, no padding; 20 bytes
encode to exactly 32 characters, so there is never padding).

Fast: the password is hashed once and the hash is shared by every user; rows go in with
bulk_create, in one transaction.
"""
import base64
import hashlib

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand
from django.db import transaction

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.utils import encrypt

BATCH = 5000


def totp_secret(i: int) -> str:
    digest = hashlib.sha256(f"usher-bench-totp-{i}".encode("ascii")).digest()
    return base64.b32encode(digest[:20]).decode("ascii").rstrip("=")


class Command(BaseCommand):
    help = "Create N benchmark users, each with a verified email and an activated TOTP."

    def add_arguments(self, parser):
        parser.add_argument("--users", type=int, required=True)
        parser.add_argument("--password", required=True)
        parser.add_argument("--email-prefix", default="peer")

    def handle(self, *args, users, password, email_prefix, **options):
        User = get_user_model()
        password_hash = make_password(password)  # once: Argon2id is slow by design
        with transaction.atomic():
            for start in range(0, users, BATCH):
                idx = range(start, min(start + BATCH, users))
                emails = [f"{email_prefix}{i}@bench.test" for i in idx]
                created = User.objects.bulk_create(
                    User(username=email, email=email, password=password_hash) for email in emails
                )
                # PostgreSQL and SQLite >= 3.35 return the new primary keys.
                assert all(u.pk is not None for u in created)
                EmailAddress.objects.bulk_create(
                    EmailAddress(user=u, email=u.email, verified=True, primary=True)
                    for u in created
                )
                # As allauth's own TOTP.activate() stores it: data={"secret": encrypt(secret)}
                # (the adapter's encrypt() is the identity unless overridden).
                Authenticator.objects.bulk_create(
                    Authenticator(
                        user=u,
                        type=Authenticator.Type.TOTP,
                        data={"secret": encrypt(totp_secret(i))},
                    )
                    for i, u in zip(idx, created)
                )
        self.stdout.write(f"seeded {users} users ({email_prefix}0@bench.test ...)")
