"""Credentials never survive into a kept error message: signed URLs, auth headers, connection strings, proxy
user info, AWS key ids, and the literal values of credential variables in the environment."""

from __future__ import annotations

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
