"""Read-only views of the ledger: public transparency figures, statements, reports."""
