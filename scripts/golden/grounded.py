"""`grounded_output`: long answers that copy the input (quote, redline, fill a record).

These are where prompt-lookup speculative decoding has something to win: most output n-grams
already sit in the prompt. max_new_tokens is set per item from the reference length (96-160).
"""
import re

from golden.common import chunk, item, output_budget
from golden.json_docs import record_item

POLICY = ("Data Protection Policy of Juniper Arc Health", [
    ("Purpose", "This policy explains how Juniper Arc Health collects, stores and shares personal data about "
     "patients, staff and suppliers, and who is responsible for each step."),
    ("Retention", "Patient records are kept for eight years after the last appointment. Staff records are kept "
     "for six years after employment ends. Records are then destroyed securely by an approved contractor, who "
     "issues a certificate of destruction for every batch."),
    ("Breaches", "Any member of staff who suspects a data breach must report it to the privacy officer within "
     "24 hours, even if the facts are not yet clear. The privacy officer decides within 72 hours whether the "
     "regulator and the affected people must be told, and keeps a written record of that decision."),
    ("Access requests", "A patient may ask for a copy of their records at any time. The request is answered "
     "within one month and free of charge, unless it is plainly excessive, in which case a reasonable fee may "
     "be charged after the patient has been told the amount."),
])
HANDBOOK = ("Travel and Expenses Handbook of Dunmore Civil Works", [
    ("Booking", "All travel is booked through the company travel desk at least ten working days before "
     "departure. Economy class is used for flights under six hours; premium economy may be booked for longer "
     "flights with the approval of a director."),
    ("Hotels", "Hotel stays are limited to $180 per night in most cities and $240 per night in London, New York "
     "and Tokyo. Staff who choose a more expensive hotel pay the difference themselves, and the difference is "
     "never reimbursed through another expense line."),
    ("Meals", "Meals on business trips are reimbursed up to $65 per day with itemised receipts. Alcohol is not "
     "reimbursed, except at client dinners approved in advance by a director, and tips above fifteen percent "
     "are not reimbursed."),
])
QUOTES = [(POLICY, 2), (POLICY, 3), (HANDBOOK, 2), (HANDBOOK, 3)]   # (document, section number)

REDLINES = [
    ("Supplier", "Vendor", "The Supplier shall deliver the goods to the Customer's site in Leeds in the quantities "
     "set out in each order. The Supplier bears the risk of loss until the goods are unloaded, and the Supplier "
     "shall replace any damaged goods within five working days at its own cost. If the Supplier cannot meet a "
     "delivery date, it shall tell the Customer in writing at least two days in advance."),
    ("the Customer", "the Client", "Invoices are sent to the Customer at the end of each month. the Customer "
     "shall pay each invoice within thirty days, and the Customer may withhold only the disputed part of an "
     "invoice. Interest on late payments is charged at two percent above the base rate until the Customer pays "
     "in full."),
    ("Contractor", "Service Provider", "The Contractor shall keep the site clean and safe at all times. The "
     "Contractor is responsible for the conduct of its staff and subcontractors, and the Contractor shall "
     "remove from the site any person whom the Owner reasonably asks to be removed. The Contractor shall not "
     "store fuel on the site without the Owner's written consent."),
]

RECORDS = [
    ("Fill a vendor record from the registration form.", [
        "Vendor registration form. Company name: Pike Hollow Mills LLC. Registered address: 310 Riverside Drive, "
        "Macon, GA 31201. Contact: Nadia Ferro, procurement lead. Email: nadia.ferro@pikehollow.example. "
        "Phone: +1 478 555 0142. Tax ID: 58-2291047. Bank: First Macon Savings."],
     {"company_name": "Pike Hollow Mills LLC", "address": "310 Riverside Drive, Macon, GA 31201",
      "contact_name": "Nadia Ferro", "email": "nadia.ferro@pikehollow.example", "phone": "+1 478 555 0142",
      "tax_id": "58-2291047"}),
    ("Fill a patient appointment record from the referral letter.", [
        "Referral letter. Patient: Felix Umber, date of birth 1979-05-14, patient number PN-772013. Referred by "
        "Dr. Amara Diallo of Pemberton Clinics to the cardiology department at Harbour General Hospital. "
        "Reason: intermittent chest pain on exertion. Appointment booked for 2024-08-22 at 10:30."],
     {"patient_name": "Felix Umber", "date_of_birth": "1979-05-14", "patient_number": "PN-772013",
      "referring_doctor": "Dr. Amara Diallo", "department": "cardiology", "appointment_date": "2024-08-22"}),
    ("Fill an asset register entry from the delivery note.", [
        "Delivery note DN-19044 from Redfern Tooling. Asset: CNC milling machine, model Redfern VM-850, serial "
        "number RVM850-22-0917. Delivered to Building C, Bay 3 of the Saltbridge Media print works on "
        "2024-06-03. Received by Hideo Marsh."],
     {"asset": "CNC milling machine", "model": "Redfern VM-850", "serial_number": "RVM850-22-0917",
      "location": "Building C, Bay 3", "delivery_date": "2024-06-03", "received_by": "Hideo Marsh"}),
]


# second batch (build_more): grounded-11 .. grounded-20
SAFETY_POLICY = ("Health and Safety Policy of Quenby Haulage", [
    ("Purpose", "This policy sets out how Quenby Haulage keeps drivers, warehouse staff and visitors safe at "
     "its depots and on the road, and who is responsible for each duty."),
    ("First aid", "Every depot has two trained first aiders on each shift and a stocked first aid kit beside "
     "each loading bay. Kits are checked on the first Monday of every month, and any item that has been used or "
     "is past its expiry date is replaced the same day."),
    ("Manual handling", "No member of staff may lift a load heavier than 25 kilograms without a second person or "
     "a mechanical aid. Pallet trucks and hoists are inspected every six months by an approved engineer, and a "
     "truck that fails inspection is tagged and taken out of use until it has been repaired and checked."),
    ("Accident reporting", "Every accident or near miss is recorded in the depot log before the end of the shift. "
     "The depot manager investigates within five working days and sends a short report to the safety director, "
     "who reviews the log every quarter and follows each action through to completion."),
])
REMOTE_GUIDE = ("Remote Working Guide of Alderwick Surveying", [
    ("Eligibility", "Staff may work from home for up to three days a week once they have passed probation. Site "
     "surveyors work remotely only on days without site visits, and each arrangement is agreed in writing with "
     "the line manager."),
    ("Equipment", "The company provides a laptop, a monitor and a headset, and pays up to $300 once towards a "
     "desk and chair. Equipment remains company property, is returned within two weeks if the "
     "arrangement ends, and any loss is reported to the IT desk the same day."),
    ("Working hours", "Remote staff are available between 10:00 and 16:00 on working days and answer calls and "
     "messages within one hour. Overtime is paid only if a line manager approved it in advance, and hours are "
     "recorded on the weekly timesheet."),
])
QUOTES_MORE = [(SAFETY_POLICY, 2), (SAFETY_POLICY, 3), (REMOTE_GUIDE, 2), (REMOTE_GUIDE, 3)]

REDLINES_MORE = [
    ("Licensee", "Subscriber", "The Licensee may install the software on up to twenty computers at its offices in "
     "Norwich. The Licensee shall not copy, resell or modify the software, and the Licensee shall keep the licence "
     "key confidential. If the Licensee finds an unauthorised copy, it shall tell the Licensor in writing within "
     "ten working days and help the Licensor to remove it."),
    ("the Landlord", "the Lessor", "Rent is paid to the Landlord in advance on the first day of each quarter. The "
     "Tenant shall pay by bank transfer to the account named by the Landlord, and the Landlord shall issue a "
     "receipt for every payment. Repairs to the roof and outside walls are made by the Landlord at its own cost."),
    ("Consultant", "Adviser", "The Consultant shall perform the services with reasonable skill and care and in "
     "line with the project plan. The Consultant shall attend the monthly progress meeting at the Company's "
     "offices, and the Consultant shall keep all project documents confidential. The Consultant may not assign "
     "the work to another person without the Company's prior written consent."),
]

RECORDS_MORE = [
    ("Fill a tenant record from the rental application.", [
        "Rental application. Applicant: Oriel Bastable. Current address: 27 Canal Row, Dayton, OH 45402. Email: "
        "oriel.bastable@mailbox.example. Phone: +1 937 555 0186. Employer: Vantrell Home Goods, warehouse "
        "supervisor. Move-in date: 2024-09-01. Letting agent: Greenhythe Lettings."],
     {"applicant_name": "Oriel Bastable", "current_address": "27 Canal Row, Dayton, OH 45402",
      "email": "oriel.bastable@mailbox.example", "phone": "+1 937 555 0186", "employer": "Vantrell Home Goods",
      "move_in_date": "2024-09-01"}),
    ("Fill a shipment record from the bill of lading.", [
        "Bill of lading BL-66310. Shipper: Corrabrook Pottery of Stoke. Consignee: Pellamy Garden Supply, "
        "Baltimore. Vessel: MV Kittiwake Star. Port of loading: Antwerp. Container CRBU 5520913 with 18 pallets "
        "of glazed planters. Shipped on board 2024-04-26. Signed by Ilse Drummond for the carrier."],
     {"bill_of_lading": "BL-66310", "shipper": "Corrabrook Pottery", "consignee": "Pellamy Garden Supply",
      "vessel": "MV Kittiwake Star", "port_of_loading": "Antwerp", "container_number": "CRBU 5520913"}),
    ("Fill a repair job record from the service report.", [
        "Service report SR-30457 from Glenrock Appliance Care. Customer: Yusuf Tregarthen, 8 Heron Close, Exeter. "
        "Appliance: dishwasher, model Brightmere BD-640, serial number BD640-23-1182. Fault: blocked drain pump, "
        "fixed on 2024-07-09. Technician: Marta Pelligrew."],
     {"customer_name": "Yusuf Tregarthen", "model": "Brightmere BD-640", "serial_number": "BD640-23-1182",
      "fault": "blocked drain pump", "service_date": "2024-07-09", "technician": "Marta Pelligrew"}),
]


def _quote(i: int, doc, n: int) -> dict:
    title, sections = doc
    chunks = [chunk(f"s{k + 1}", f"Section {k + 1} ({h}). {body}", title) for k, (h, body) in enumerate(sections)]
    heading, body = sections[n - 1]
    return item(f"grounded-{i:02d}", "grounded_output", f"Quote section {n} ({heading}) of the {title} verbatim.",
                [body], "f1", chunks, [f"s{n}"], instruction="Copy the section text exactly, without its heading.",
                max_new_tokens=output_budget(body), meta={"task": "quote"})


def _redline(i: int, old: str, new: str, text: str) -> dict:
    answer = re.sub(rf"\b{re.escape(old)}\b", new, text)
    return item(f"grounded-{i:02d}", "grounded_output",
                f"Rewrite the paragraph, replacing every '{old}' with '{new}'.", [answer], "f1",
                [chunk("p1", text, "terms-and-conditions")], ["p1"],
                instruction="Output the whole rewritten paragraph and change nothing else.",
                max_new_tokens=output_budget(answer), meta={"task": "redline", "replace": [old, new]})


def _build(quotes, redlines, records, first: int) -> list[dict]:
    """Quote, redline and record items, numbered grounded-<first>, grounded-<first + 1>, ..."""
    items = [_quote(first + i, doc, n) for i, (doc, n) in enumerate(quotes)]
    items += [_redline(first + len(items) + i, *r) for i, r in enumerate(redlines)]
    for q, paras, rec in records:
        fields = {k: "string" for k in rec}
        it = record_item(f"grounded-{first + len(items):02d}", "grounded_output", q, paras, rec, fields,
                         "forms", max_new_tokens=96)
        it["meta"] = {"task": "record"}
        items.append(it)
    return items


def build(rng) -> list[dict]:
    return _build(QUOTES, REDLINES, RECORDS, 1)


def build_more(rng) -> list[dict]:
    """The second batch, grounded-11 .. grounded-20: the same mix (4 quotes, 3 redlines, 3 records)."""
    return _build(QUOTES_MORE, REDLINES_MORE, RECORDS_MORE, 11)
