"""Argon2id with the same parameters as Usher (m=19456 KiB, t=2, p=1).

Hashes are stored as `argon2$argon2id$v=19$m=19456,t=2,p=1$...`.
"""
from django.contrib.auth.hashers import Argon2PasswordHasher


class UsherArgon2PasswordHasher(Argon2PasswordHasher):
    # `algorithm` stays "argon2", so Django treats these as ordinary Argon2 hashes and never
    # re-hashes them on login (the parameters match, so must_update() is False).
    time_cost = 2
    memory_cost = 19456
    parallelism = 1
