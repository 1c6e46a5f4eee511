"""SSH signatures on snapshot commits, in the form git writes and checks (``gpg.format=ssh``).

``sshsig`` is the bottom: OpenSSH's ``SSHSIG`` format, public keys and their
signatures. ``agent`` speaks the ssh-agent protocol and ``allowed`` reads git's
allowed-signers files; both build on ``sshsig``. ``keys`` loads a signing key
(a private key file, or a key an agent holds), and ``commits`` signs a commit
and checks one against an allowed-signers file. Outside the package, only
``errors`` and ``git`` are used.
"""
