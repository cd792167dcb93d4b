"""Provider fakes and a store for the notifier and delivery tests."""

from tests.fakes.fixtures import *  # noqa: F403
