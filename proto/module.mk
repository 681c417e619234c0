# proto: sources added by the module owner.
