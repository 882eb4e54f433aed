"""Operations surfaces (docs/operations.md): /metrics and the live view."""
