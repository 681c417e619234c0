# agent: sources added by the module owner.
