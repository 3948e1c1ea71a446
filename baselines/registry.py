"""The `strategies` registry: one entry per strategy family, registered by the module that defines it."""

from baselines.base import Strategy
from contracts.registry import Registry

strategies: Registry[type[Strategy]] = Registry("strategy", entry_point_group="advisor.baselines")
