"""Two-factor sign-in: authenticator apps (TOTP), passkeys (WebAuthn) and recovery codes; the
second step of a password log-in; the account policy that requires them of administrators; the
fresh confirmation asked before the most dangerous actions."""
