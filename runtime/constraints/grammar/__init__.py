"""Context-free grammars (Lark syntax) as exact token-level constraints."""
