# stack: sources added by the module owner.
