"""The test suite, laid out like the package: one folder per layer (support code in tests/helpers/)."""
