"""Connectors: the outside systems a sales team already has, in Nudge's shapes.

One module per system. Each maps the provider's shapes to Nudge's events
(:mod:`nudge.events`) and Nudge's updates to the provider's API, with the
provider's official client, and checks the provider's webhook signatures. They
decide nothing about leads: the agents and routes that use them live in
:mod:`streams`, and everything here is plain Python tested without a broker.

    segment       Segment Spec web events (Segment, RudderStack, Jitsu)
    twilio_voice  Twilio Voice status callbacks → call.ended
    zoom          Zoom meeting webhooks → meeting.ended
    hubspot       HubSpot webhooks in, properties and engagements out
    fieldmap      the YAML maps of Nudge fields to a CRM's properties
"""
