from satshare.security import (
    generate_api_key,
    hash_api_key,
    hmac_sha256_hex,
    verify_sha256_signature,
)


def test_btcpay_signature_check_value() -> None:
    # The check value from PROTOCOLS.md.
    body = b'{"deliveryId":"X","type":"InvoiceSettled"}'
    expected = "c8da33c4276d2a56b8dd71d2d756bbb197941cb8c10d2dee01f00e53846e5358"
    assert hmac_sha256_hex("HelloWorld", body) == expected
    assert verify_sha256_signature("HelloWorld", body, f"sha256={expected}")
    assert verify_sha256_signature("HelloWorld", body, f"SHA256={expected.upper()}")


def test_signature_refusals() -> None:
    body = b"{}"
    good = "sha256=" + hmac_sha256_hex("secret-123", body)
    assert verify_sha256_signature("secret-123", body, good)
    assert not verify_sha256_signature("secret-123", body + b" ", good)
    assert not verify_sha256_signature("other", body, good)
    assert not verify_sha256_signature("secret-123", body, None)
    assert not verify_sha256_signature("secret-123", body, "")
    assert not verify_sha256_signature("secret-123", body, good.replace("sha256", "sha1"))
    assert not verify_sha256_signature("secret-123", body, "sha256=")
    assert not verify_sha256_signature("", body, good)


def test_api_keys_have_prefix_and_are_stored_as_hash() -> None:
    key = generate_api_key()
    assert key.plaintext.startswith("ss_")
    assert len(key.plaintext) == len("ss_") + 43  # 32 random bytes in URL-safe base64
    assert key.key_hash == hash_api_key(key.plaintext)
    assert key.plaintext not in key.key_hash
    assert key.plaintext.startswith(key.display_prefix)
    assert generate_api_key().plaintext != key.plaintext
