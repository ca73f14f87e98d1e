"""Tests of remote storage: S3 (moto), HTTP, GCS (emulator) and Azure (Azurite) against local reads."""
