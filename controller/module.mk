# controller: sources added by the module owner.
