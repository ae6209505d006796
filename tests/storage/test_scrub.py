"""Credentials never survive into a kept error message: signed URLs, auth headers, connection strings, proxy
user info, AWS key ids, and the literal values of credential variables in the environment."""

from __future__ import annotations

import os
import threading

from sbench.storage.scrub import scrub_message

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def test_signed_url_queries_are_cut_but_paths_stay() -> None:
    text = (
        "Error performing GET https://b.s3.amazonaws.com/k/obj.dat?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20240101&X-Amz-Signature=abc123def in 3ms"
    )
    out = scrub_message(text)
    assert out == "Error performing GET https://b.s3.amazonaws.com/k/obj.dat?REDACTED in 3ms"
    urllib3 = "Max retries exceeded with url: /bkt/key?sig=zzz&se=2030 (Caused by ...)"
    assert scrub_message(urllib3) == "Max retries exceeded with url: /bkt/key?REDACTED (Caused by ...)"


def test_secret_pairs_headers_and_key_ids_are_masked() -> None:
    cases = {
        "Protocol=https;AccountName=acct;AccountKey=Zm9vYmFyYmF6==;EndpointSuffix=x": "Zm9vYmFy",
        "SharedAccessSignature=sv=2021&sig=AbCdEf%3D": "AbCdEf",
        "Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/2024, Signature=feed": "feed",
        'headers {"Authorization": "Bearer ya29.secret-token"}': "ya29",
        "proxy http://user:hunter2@proxy.local:3128 refused": "hunter2",
        "key id AKIAIOSFODNN7EXAMPLE is unknown": "AKIAIOSFODNN7EXAMPLE",
        "x-amz-security-token: IQoJb3JpZ2luX2VjEXAMPLE": "IQoJb3JpZ2lu",
    }
    for text, secret in cases.items():
        out = scrub_message(text)
        assert secret not in out, (text, out)
        assert "REDACTED" in out, out
    assert "AccountName=acct" in scrub_message(next(iter(cases)))  # what is not secret stays readable


def test_credential_variable_values_are_replaced_by_their_names() -> None:
    env = {
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_REGION": "us-east-1",
        "SHORT_TOKEN": "abc",
        "AWS_SHARED_CREDENTIALS_FILE": "/home/u/.aws/credentials",  # where a secret is, not the secret
    }
    text = f"signature mismatch for secret {SECRET} in us-east-1 abc; /home/u/.aws/credentials"
    assert scrub_message(text, env) == text.replace(SECRET, "<AWS_SECRET_ACCESS_KEY>")


def test_plain_messages_are_unchanged() -> None:
    for text in (
        "PUT w/: no_space (file:///m/w/put_1.dat): put failed: No space left on device [ENOSPC]",
        "InvalidToken: The provided token is malformed",
        "GET data/: not_found (s3://b/k): NoSuchKey",
    ):
        assert scrub_message(text, {}) == text


def test_scrubbing_while_another_thread_changes_the_environment_never_fails() -> None:
    """A Ray task applies its forwarded environment while its shard threads scrub error messages."""
    os.environ["SBENCH_TEST_SECRET_TOKEN"] = "s3cr3t-value-0042"
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            for n in range(50):
                os.environ[f"SBENCH_CHURN_{n}"] = "x"
            for n in range(50):
                del os.environ[f"SBENCH_CHURN_{n}"]

    worker = threading.Thread(target=churn, daemon=True)
    worker.start()
    try:
        for _ in range(20000):
            assert scrub_message("GET failed: s3cr3t-value-0042") == "GET failed: <SBENCH_TEST_SECRET_TOKEN>"
    finally:
        stop.set()
        worker.join()
        for n in range(50):
            os.environ.pop(f"SBENCH_CHURN_{n}", None)
        del os.environ["SBENCH_TEST_SECRET_TOKEN"]
