//! The health-centre side (HER-SYS part): confirmed cases, processing numbers, delivery, the verification API and the staff portal.
