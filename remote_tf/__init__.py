"""TensorFlow on a remote accelerator: client helpers, worker launcher, serving (next releases)."""
