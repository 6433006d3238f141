//! The phone app's core: daily keys, sightings, positive registration, exposure check and notification.
