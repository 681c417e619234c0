# deploy/testbed: sources added by the module owner.
