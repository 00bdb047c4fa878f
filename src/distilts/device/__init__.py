"""The emulated arm64 device (qemu-aarch64 + Debian arm64 Python + the runtime wheels): its builder
(`arm64`) and the worker that runs inside it (`worker`, runtime only)."""
