"""`json_extraction`: a business document; the answer is a JSON object checked against a JSON Schema."""
import json

from golden.common import chunk, item

TYPE_WORDS = {"string": "string", "number": "number", "integer": "integer", "boolean": "true/false"}
DATE = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"}

# (id, question, document paragraphs, reference record, {key: JSON Schema type or schema dict})
DOCS = [
    ("invoice", "Extract the invoice number, vendor, total and due date from the invoice.", [
        "INVOICE INV-20931. Issued by Ridgeback Supply Co., 44 Mill Street, Tacoma, to Lumen Dental Group. "
        "Issue date 2024-06-15. Payment terms: 30 days. Due date 2024-07-15.",
        "Items: 120 boxes of nitrile gloves at $31.20 each ($3,744.00); 30 cases of face masks at $35.625 "
        "each ($1,068.75), less a loyalty discount of $0.25. Total due: $4,812.50 USD."],
     {"invoice_number": "INV-20931", "vendor": "Ridgeback Supply Co.", "total_usd": 4812.5,
      "due_date": "2024-07-15"}, {"invoice_number": "string", "vendor": "string", "total_usd": "number",
                                  "due_date": DATE}),
    ("purchase-order", "Extract the order number, buyer, quantity and delivery date from the purchase order.", [
        "Purchase order PO-7781 from Kestrel Foods, 9 Harbour Way, Savannah. Supplier: Ostrava Packaging. "
        "Order date 2024-03-02. Requested delivery date 2024-03-19 to the Savannah cold store.",
        "Line 1: 2,400 printed trays, item code TR-55, unit price $0.42. Pallets: 6. Deliver between 06:00 "
        "and 14:00 only."],
     {"order_number": "PO-7781", "buyer": "Kestrel Foods", "quantity": 2400, "delivery_date": "2024-03-19"},
     {"order_number": "string", "buyer": "string", "quantity": "integer", "delivery_date": DATE}),
    ("onboarding", "Extract the new employee's name, employee ID, department and start date.", [
        "New starter form. Name: Priya Nandakumar. Employee ID: E-40217. Department: Claims Analytics. "
        "Manager: Owen Lachlan. Start date: 2024-09-09. Laptop: 14-inch, ordered 2024-08-26.",
        "Badge photo received. Payroll setup is due five days before the start date."],
     {"name": "Priya Nandakumar", "employee_id": "E-40217", "department": "Claims Analytics",
      "start_date": "2024-09-09"}, {"name": "string", "employee_id": "string", "department": "string",
                                    "start_date": DATE}),
    ("shipping", "Extract the tracking number, carrier, number of cartons and gross weight.", [
        "Advance shipping notice ASN-3310. Carrier: Bluewake Freight. Tracking number BW884201377. "
        "Shipped 2024-05-21 from Rotterdam to Felixstowe.",
        "Contents: 36 cartons of ceramic tiles on 4 pallets. Gross weight 1,284.5 kg. Net weight 1,190 kg."],
     {"tracking_number": "BW884201377", "carrier": "Bluewake Freight", "cartons": 36, "gross_weight_kg": 1284.5},
     {"tracking_number": "string", "carrier": "string", "cartons": "integer", "gross_weight_kg": "number"}),
    ("incident", "Extract the incident ID, severity, number of affected services and whether it is resolved.", [
        "Incident report INC-5521, opened 2024-02-11 at 03:40 UTC. Severity: high. Summary: the payments "
        "gateway returned errors after a certificate expired.",
        "Affected services: 3 (checkout, refunds, partner API). Status: resolved at 05:15 UTC after the "
        "certificate was renewed. Follow-up owner: Grace Obuya."],
     {"incident_id": "INC-5521", "severity": "high", "affected_services": 3, "resolved": True},
     {"incident_id": "string", "severity": "string", "affected_services": "integer", "resolved": "boolean"}),
    ("spec-sheet", "Extract the model, weight in grams, battery life in hours and whether it is waterproof.", [
        "Product sheet: Halcyon Optics TrailCam T4. Weight 412 grams without batteries. Sensor 20 megapixels. "
        "Battery life 9.5 hours of continuous recording.",
        "The housing is not waterproof; it is splash resistant only. Warranty two years."],
     {"model": "TrailCam T4", "weight_grams": 412, "battery_hours": 9.5, "waterproof": False},
     {"model": "string", "weight_grams": "integer", "battery_hours": "number", "waterproof": "boolean"}),
    ("booking", "Extract the confirmation code, guest name, check-in date and number of nights.", [
        "Booking confirmed. Confirmation code QH-88213. Guest: Lena Vostrikova. Hotel: Quayside House, "
        "Bristol. Check-in 2024-10-03, check-out 2024-10-07 (4 nights). Room: double, non-smoking.",
        "Breakfast included. Free cancellation until 2024-10-01."],
     {"confirmation_code": "QH-88213", "guest_name": "Lena Vostrikova", "check_in": "2024-10-03", "nights": 4},
     {"confirmation_code": "string", "guest_name": "string", "check_in": DATE, "nights": "integer"}),
    ("claim", "Extract the claim number, policy number, amount claimed and incident date.", [
        "Claim CL-60294 under policy MRW-118-4471, insured Lantern Bakery Ltd. Date of incident 2024-01-28: "
        "a freezer failure spoiled stock.",
        "Amount claimed: $6,340.75. Excess on the policy: $500. Assessor: Samir Haddad, visit booked 2024-02-05."],
     {"claim_number": "CL-60294", "policy_number": "MRW-118-4471", "amount_claimed_usd": 6340.75,
      "incident_date": "2024-01-28"}, {"claim_number": "string", "policy_number": "string",
                                       "amount_claimed_usd": "number", "incident_date": DATE}),
    ("job-posting", "Extract the job title, location, minimum salary and whether the role is remote.", [
        "Saltbridge Media is hiring a Senior Data Engineer in Leeds. Salary from 58000 to 72000 GBP a year. "
        "This is an office-based role: remote work is not offered.",
        "Apply by 2024-11-30. Interviews take place in two rounds."],
     {"title": "Senior Data Engineer", "location": "Leeds", "salary_min": 58000, "remote": False},
     {"title": "string", "location": "string", "salary_min": "integer", "remote": "boolean"}),
    ("minutes", "Extract the meeting date, who chaired it, the number of attendees and the approved budget.", [
        "Minutes of the Bellweather Solar safety committee, held 2024-04-17. Chair: Rosa Quintero. "
        "Attendees: 11. Apologies: 2.",
        "Decisions: the committee approved a training budget of $42,000 for the year and set the next "
        "meeting for 2024-07-16."],
     {"meeting_date": "2024-04-17", "chair": "Rosa Quintero", "attendees": 11, "approved_budget_usd": 42000},
     {"meeting_date": DATE, "chair": "string", "attendees": "integer", "approved_budget_usd": "number"}),
]


# the second batch, json-11 .. json-20 (same shape as DOCS)
MORE_DOCS = [
    ("credit-note", "Extract the credit note number, customer, amount credited and issue date.", [
        ("CREDIT NOTE CN-4417. Issued 2024-08-12 by Cobbleford Hardware Supply, 18 Tannery Lane, Provo, to "
         "Ashgrove Animal Clinic. Against original invoice INV-30552 dated 2024-07-29."),
        ("Reason: 14 pet carriers returned damaged, at $52.40 each ($733.60), plus return freight of $45.00. "
         "Total credited: $778.60 USD.")],
     {"credit_note_number": "CN-4417", "customer": "Ashgrove Animal Clinic", "credit_usd": 778.6,
      "issue_date": "2024-08-12"}, {"credit_note_number": "string", "customer": "string", "credit_usd": "number",
                                    "issue_date": DATE}),
    ("goods-received",
     "Extract the receipt number, supplier, units received and whether any goods were damaged.", [
        ("Goods received note GRN-2086, Kettlebrook warehouse of Tollgate Outdoor Gear. Supplier: Brannock "
         "Textiles. Received 2024-04-09 against order PO-6630."),
        ("Units ordered: 1,800 rain jackets; units received: 1,750. Condition: all cartons intact, no damage "
         "found. Checked by Imogen Raskin.")],
     {"receipt_number": "GRN-2086", "supplier": "Brannock Textiles", "units_received": 1750, "damaged": False},
     {"receipt_number": "string", "supplier": "string", "units_received": "integer", "damaged": "boolean"}),
    ("expense-report", "Extract the employee, report number, total claimed and submission date from the report.", [
        ("Expense report EXP-1193. Employee: Tomasz Wierzbicki, Field Sales. Trip: client visits in Denver, "
         "2024-05-06 to 2024-05-08. Submitted 2024-05-13. Approver: Hallie Winterbourne."),
        ("Airfare $412.80, hotel two nights $356.00, meals $118.45, taxis $64.25. Total claimed: $951.50. "
         "Cash advance already paid: $200.")],
     {"employee": "Tomasz Wierzbicki", "report_number": "EXP-1193", "total_claimed_usd": 951.5,
      "submitted_date": "2024-05-13"}, {"employee": "string", "report_number": "string",
                                        "total_claimed_usd": "number", "submitted_date": DATE}),
    ("work-order", "Extract the work order number, technician, labour hours and completion date.", [
        ("Work order WO-38120 for Stilmoor Cold Storage, Green Bay: replace compressor seals on freezer unit 3. "
         "Technician: Dario Finnegan. Scheduled for 2024-02-20."),
        "Completed 2024-02-22 after the parts arrived late. Labour: 6.5 hours. Parts: 2 seal kits at $88 each."],
     {"work_order": "WO-38120", "technician": "Dario Finnegan", "labour_hours": 6.5,
      "completed_date": "2024-02-22"}, {"work_order": "string", "technician": "string", "labour_hours": "number",
                                        "completed_date": DATE}),
    ("lease", "Extract the tenant, monthly rent, lease start date and whether pets are allowed.", [
        ("Residential lease summary, unit 4B, 112 Birchwood Court, Olympia. Landlord: Maplestone Property "
         "Management. Tenant: Delphine Arceneaux. Term: 12 months starting 2024-07-01; signed 2024-06-10."),
        "Monthly rent: $1,685. Security deposit: $2,000. Pets are permitted with a one-off fee of $250."],
     {"tenant": "Delphine Arceneaux", "monthly_rent_usd": 1685, "lease_start": "2024-07-01", "pets_allowed": True},
     {"tenant": "string", "monthly_rent_usd": "number", "lease_start": DATE, "pets_allowed": "boolean"}),
    ("quotation", "Extract the quote number, customer, quoted total and the date the quote is valid until.", [
        ("Quotation Q-5072 from Brightwater Signage to Larkspur Pediatric Clinic, prepared 2024-09-03 by Thea "
         "Marchetti. This quotation is valid until 2024-10-03."),
        "Materials $2,140.00, installation $760.00, permit fee $95.00. Quoted total: $2,995.00 excluding tax."],
     {"quote_number": "Q-5072", "customer": "Larkspur Pediatric Clinic", "quoted_total_usd": 2995,
      "valid_until": "2024-10-03"}, {"quote_number": "string", "customer": "string", "quoted_total_usd": "number",
                                     "valid_until": DATE}),
    ("itinerary", "Extract the booking reference, passenger, outbound flight number and number of checked bags.", [
        ("E-ticket receipt. Booking reference ZK7T4M. Passenger: Anselm Rydberg. Outbound flight NV 2318, "
         "operated by Norvale Air, Oslo to Reykjavik, departing 2024-12-14 at 09:25."),
        ("Return flight NV 2319 on 2024-12-18. Baggage: 1 checked bag of 23 kg and 1 cabin bag per passenger. "
         "Seat 14C.")],
     {"booking_reference": "ZK7T4M", "passenger": "Anselm Rydberg", "flight_number": "NV 2318", "checked_bags": 1},
     {"booking_reference": "string", "passenger": "string", "flight_number": "string", "checked_bags": "integer"}),
    ("product-sheet",
     "Extract the model, capacity in litres, power in watts and whether the pot is dishwasher safe.", [
        ("Product sheet: Tarrow Kitchenware SlowCook Pro 6. Capacity 5.7 litres. Power 320 watts. Three heat "
         "settings and a keep-warm mode."),
        ("The ceramic pot and glass lid are dishwasher safe; the heating base is not. Cable length 1.2 metres. "
         "Warranty three years.")],
     {"model": "SlowCook Pro 6", "capacity_litres": 5.7, "power_watts": 320, "pot_dishwasher_safe": True},
     {"model": "string", "capacity_litres": "number", "power_watts": "integer", "pot_dishwasher_safe": "boolean"}),
    ("registration", "Extract the attendee, registration ID, number of workshops booked and the amount paid.", [
        ("Registration confirmed: Northline Logistics Summit, Kansas City, 2024-10-22 to 2024-10-24. "
         "Attendee: Beatrix Vandermeer, Corvane Analytics. Registration ID: REG-77045."),
        ("Workshops booked: 3. Amount paid: $1,240.00 on 2024-08-30; list price before the early-bird "
         "discount $1,490.00.")],
     {"attendee": "Beatrix Vandermeer", "registration_id": "REG-77045", "workshops": 3, "amount_paid_usd": 1240},
     {"attendee": "string", "registration_id": "string", "workshops": "integer", "amount_paid_usd": "number"}),
    ("inspection", "Extract the vehicle registration, odometer reading, inspection date and whether it passed.", [
        ("Vehicle inspection report VI-2291 for Pellworth Couriers. Registration KX21 RPT, a 2021 panel van. "
         "Inspected 2024-03-14 at the Hartvale depot by Jonas Vellacott. Odometer: 84,312 miles."),
        "Brakes, lights and tyres within limits. Result: pass. Next inspection due 2025-03-14."],
     {"registration": "KX21 RPT", "odometer_miles": 84312, "inspection_date": "2024-03-14", "passed": True},
     {"registration": "string", "odometer_miles": "integer", "inspection_date": DATE, "passed": "boolean"}),
]


def schema_of(fields: dict) -> dict:
    """A JSON Schema (type object, every key required) from {key: type name or schema}."""
    props = {k: (t if isinstance(t, dict) else {"type": t}) for k, t in fields.items()}
    return {"type": "object", "required": list(fields), "properties": props}


def json_instruction(schema: dict) -> str:
    """'Reply with JSON only: {"key": type, ...}' spelled from the schema."""
    parts = []
    for k, p in schema["properties"].items():
        word = "date (YYYY-MM-DD)" if "pattern" in p else TYPE_WORDS[p["type"]]
        parts.append(f'"{k}": {word}')
    return "Reply with JSON only: {" + ", ".join(parts) + "}"


def record_item(id: str, category: str, question: str, paragraphs: list[str], record: dict, fields: dict,
                source: str, max_new_tokens: int | None = None) -> dict:
    schema = schema_of(fields)
    chunks = [chunk(f"c{i + 1}", p, source) for i, p in enumerate(paragraphs)]
    return item(id, category, question, [json.dumps(record)], "json", chunks, [c["id"] for c in chunks],
                schema=schema, instruction=json_instruction(schema), max_new_tokens=max_new_tokens)


def _doc_items(docs: list[tuple], first: int) -> list[dict]:
    """json-<first>, json-<first + 1>, ... from (id, question, paragraphs, record, fields) tuples."""
    return [record_item(f"json-{first + i:02d}", "json_extraction", q, paras, rec, fields, key)
            for i, (key, q, paras, rec, fields) in enumerate(docs)]


def build(rng) -> list[dict]:
    return _doc_items(DOCS, 1)


def build_more(rng) -> list[dict]:
    """The second batch, json-11 .. json-20 (make_golden.py does not call it yet)."""
    return _doc_items(MORE_DOCS, len(DOCS) + 1)
