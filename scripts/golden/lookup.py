"""`lookup` facts: one company fact in a short clean chunk (~100 tokens of context per item)."""
from golden.common import Fact, chunk, fact_item

PEOPLE = ["Tomas Reyes", "Joan Pike", "Hideo Marsh", "Lena Vostrikova", "Samir Haddad", "Grace Obuya",
          "Pieter Aalders", "Nadia Ferro", "Owen Lachlan", "Rosa Quintero"]

FACTS = [
    Fact("lookup-01", "Who is the chief executive of Brindle Analytics?", ["Maren Okafor"],
         "Brindle Analytics", "Maren Okafor",
         "{e} is a data consultancy with offices in three states. Its chief executive is {v}, who oversees "
         "a team of analysts working mainly for regional hospitals and transport operators.",
         "From 2012 until 2019 the chief executive of {e} was {v}, who has since retired from the company "
         "and now chairs a local charity.",
         PEOPLE, ["Brindle Analytica", "Brindlemoor Analytics"], "brindle-profile",
         ["Brindle Analytics reported revenue of $48 million last year and opened a new office in Boise."]),
    Fact("lookup-02", "In which city is Quillfeather Paper Co. headquartered?", ["Duluth"],
         "Quillfeather Paper Co.", "Duluth, Minnesota",
         "{e} makes recycled packaging paper for grocery chains. The company is headquartered in {v}, "
         "where it also runs its largest mill and a small research laboratory.",
         "{e} was headquartered in {v} until 2015, when it sold that building and moved its head office.",
         ["Fargo, North Dakota", "Spokane, Washington", "Erie, Pennsylvania", "Tulsa, Oklahoma",
          "Reno, Nevada", "Macon, Georgia"], ["Quillfeather Papers Ltd.", "Quillfield Paper Co."],
         "quillfeather-profile", ["Quillfeather Paper Co. ships about 90,000 tonnes of paper a year."]),
    Fact("lookup-03", "In what year was Osterby Robotics founded?", ["2009"],
         "Osterby Robotics", "2009",
         "{e} builds warehouse picking robots for parcel carriers. The company was founded in {v} by two "
         "former university engineers and is still privately owned.",
         "{e} opened its first overseas office, in Rotterdam, in {v}.",
         ["2004", "2011", "2013", "2006", "2015", "2001"], ["Osterbye Robotics", "Osterby Automation"],
         "osterby-profile", ["Osterby Robotics has installed more than 1,800 robots in 14 countries."]),
    Fact("lookup-04", "How many people does Tallgrass Bio employ?", ["1,240", "1240"],
         "Tallgrass Bio", "1,240",
         "{e} develops drought-tolerant seed varieties. The company employs {v} people across its "
         "laboratories and test farms, most of them in the Midwest.",
         "In 2018 {e} employed {v} people, before its expansion into seed processing.",
         ["860", "1,975", "2,310", "540", "1,410", "3,050"], ["Tallgrass Biologics", "Tall Grass Bioscience"],
         "tallgrass-profile", ["Tallgrass Bio sells its seed through 300 independent dealers."]),
    Fact("lookup-05", "What is the retail price of the Nimbus Kettle from Harrow Home?", ["$149"],
         "Harrow Home", "$149",
         "The Nimbus Kettle from {e} holds 1.7 litres and boils in under three minutes. Its recommended "
         "retail price is {v}, which includes a two-year warranty.",
         "When it launched in 2020, the Nimbus Kettle from {e} sold for {v}; the price has since been raised.",
         ["$129", "$99", "$179", "$139", "$159", "$119"], ["Harrow House", "Harrowgate Home"],
         "harrow-catalogue", ["Harrow Home sells kitchen appliances through its own website and 40 shops."]),
    Fact("lookup-06", "What is the rated range of the Strada e-bike from Velora?", ["85 kilometres", "85 km"],
         "Velora", "85 kilometres",
         "The Strada e-bike from {e} uses a 540 Wh battery. Its rated range is {v} on a single charge in "
         "eco mode, and the battery recharges in about five hours.",
         "The first-generation Strada e-bike from {e} had a rated range of {v} with a smaller battery.",
         ["70 kilometres", "110 kilometres", "95 kilometres", "60 kilometres", "120 kilometres"],
         ["Velor Bikes", "Velora Cycles"], "velora-spec", ["Velora assembles its bicycles in Porto."]),
    Fact("lookup-07", "Which firm audits the accounts of Ardent Freight?", ["Lindqvist & Boone"],
         "Ardent Freight", "Lindqvist & Boone LLP",
         "{e} operates a fleet of 300 refrigerated trucks. Its annual accounts are audited by {v}, and the "
         "audit committee meets four times a year.",
         "Until the 2021 financial year the accounts of {e} were audited by {v}.",
         ["Marsh Kettering LLP", "Abernathy Cole & Co.", "Paxton Reid LLP", "Holloway Strand LLP",
          "Everett & Vance LLP"], ["Ardent Freightways", "Ardentia Freight"], "ardent-annual-report",
         ["Ardent Freight moves chilled food for supermarkets in the Pacific Northwest."]),
    Fact("lookup-08", "Under what ticker symbol do Cobaltline Energy shares trade?", ["CBLN"],
         "Cobaltline Energy", "CBLN",
         "{e} develops grid-scale battery storage in Texas and Arizona. Its shares trade under the ticker "
         "symbol {v}, and it has paid a dividend every year since 2019.",
         "Before its 2020 merger, {e} traded under the ticker symbol {v}.",
         ["CLNE", "CBEN", "CBLT", "KBLN", "CBNE"], ["Cobalt Line Power", "Cobaltline Energia"],
         "cobaltline-investors", ["Cobaltline Energy has 1.2 gigawatt-hours of storage in operation."]),
    Fact("lookup-09", "Who is the chief medical officer of Pemberton Clinics?", ["Ines Castellano"],
         "Pemberton Clinics", "Dr. Ines Castellano",
         "{e} runs eleven outpatient clinics in the Carolinas. Its chief medical officer is {v}, who also "
         "chairs the group's patient safety committee.",
         "{v} served as chief medical officer of {e} until 2020 and now advises the board.",
         ["Dr. Paul Hennig", "Dr. Amara Diallo", "Dr. Yuki Tanabe", "Dr. Colm Fitzgerald", "Dr. Sofia Brandt"],
         ["Pemberley Clinics", "Pemberton Health Centres"], "pemberton-leadership",
         ["Pemberton Clinics treats about 400,000 patients a year."]),
    Fact("lookup-10", "How many stores does Marlowe Coffee operate?", ["212"],
         "Marlowe Coffee", "212",
         "{e} roasts its beans in Portland and sells them through its own cafes. The chain currently "
         "operates {v} stores, and every store offers a refill discount.",
         "At the end of 2019 {e} operated {v} stores.",
         ["187", "240", "165", "198", "231", "256"], ["Marlow Coffee House", "Marlowe Roasters"],
         "marlowe-profile", ["Marlowe Coffee buys most of its beans from cooperatives in Peru."]),
    Fact("lookup-11", "What is the flagship game of Sablewood Games?", ["Lanterns of Orrin"],
         "Sablewood Games", "Lanterns of Orrin",
         "{e} is an independent studio of about 80 developers. Its flagship game is {v}, a puzzle "
         "adventure that has sold more than two million copies.",
         "Before its current title, the flagship game of {e} was {v}, which is no longer sold.",
         ["Ember Road", "The Glass Orchard", "Tidewater Keep", "Saltmarsh Tales", "Hollow Crown Derby"],
         ["Sablewood Studios", "Sable Wood Interactive"], "sablewood-profile",
         ["Sablewood Games was started by three former animators in Montreal."]),
    Fact("lookup-12", "Which email address handles customer support at Fenwick Hydraulics?",
         ["help@fenwick-hydraulics.example"], "Fenwick Hydraulics", "help@fenwick-hydraulics.example",
         "{e} supplies pumps and valves to farm equipment makers. Customer support requests should be "
         "sent to {v} and are answered within one business day.",
         "The old support address of {e}, {v}, was closed in 2022 and no longer receives mail.",
         ["service@fenwick-hyd.example", "support@fenwickpumps.example", "care@fenwick-group.example",
          "info@fenwick-valves.example"], ["Fenwick Hydraulic Systems", "Fenwicke Hydraulics"],
         "fenwick-contacts", ["Fenwick Hydraulics has a service centre in Des Moines."]),
]


# second batch (lookup-13 .. lookup-22); kept apart from FACTS, which also feeds long_noisy's filler pool
MORE_FACTS = [
    Fact("lookup-13", "Who is the chief financial officer of Thistledown Software?", ["Anneke Rasmussen"],
         "Thistledown Software", "Anneke Rasmussen",
         "{e} sells scheduling software to physiotherapy and veterinary practices. Its chief financial "
         "officer is {v}, who joined the company in 2021 and also manages investor relations.",
         "{v} was chief financial officer of {e} from 2014 until 2020 and left to run a venture fund.",
         ["Bernard Oyelaran", "Kiri Whatuira", "Matteo Galli", "Sunniva Dahl", "Deepak Varanasi",
          "Claire Montfort"], ["Thistledown Systems", "Thistlewood Software"], "thistledown-leadership",
         ["Thistledown Software has about 6,500 customer practices in Canada."]),
    Fact("lookup-14", "In which city does Scarcliffe Trailwear have its head office?", ["Albuquerque"],
         "Scarcliffe Trailwear", "Albuquerque, New Mexico",
         "{e} sells hiking boots, tents and climbing gear by mail order. Its head office is in {v}, and "
         "the company runs its call centre from the same building.",
         "{e} had its head office in {v} until 2017, when the lease on that building ran out.",
         ["Boulder, Colorado", "Missoula, Montana", "Bend, Oregon", "Ogden, Utah", "Laramie, Wyoming",
          "Las Cruces, New Mexico"], ["Scarcliffe Trail Co.", "Scarcroft Trailwear"],
         "scarcliffe-profile",
         ["Scarcliffe Trailwear mails a printed catalogue to 400,000 households."]),
    Fact("lookup-15", "In what year was Corrigan Aerial Survey established?", ["1987"],
         "Corrigan Aerial Survey", "1987",
         "{e} maps farmland, forests and pipelines from light aircraft. The company was established in {v} "
         "by a former navy navigator and now flies in six countries.",
         "{e} bought its first survey aircraft in {v}, which it still flies today.",
         ["1979", "1992", "1984", "1995", "1990", "1981"], ["Corrigan Aerial Mapping", "Carrigan Aerial Survey"],
         "corrigan-profile",
         ["Corrigan Aerial Survey has a fleet of nine aircraft based at two regional airfields."]),
    Fact("lookup-16", "How many drivers does Pendry Van Lines employ?", ["3,480", "3480"],
         "Pendry Van Lines", "3,480",
         "{e} runs local delivery routes for furniture and appliance retailers. The company currently "
         "employs {v} drivers, and each new driver spends two weeks on the road with a trainer.",
         "In 2016 {e} employed {v} drivers, most of them working from a single depot.",
         ["2,950", "4,120", "1,860", "3,210", "2,640", "4,475"], ["Pendry Van Hire", "Pendrey Van Lines"],
         "pendry-profile", ["Pendry Van Lines keeps its vans at depots in eleven towns."]),
    Fact("lookup-17", "What is the list price of the Halden standing desk from Loomis & Hart?", ["$685"],
         "Loomis & Hart", "$685",
         "The Halden standing desk from {e} has a 160 cm oak top and two quiet motors. Its list price is "
         "{v}, and delivery to any mainland address is free.",
         "The Halden standing desk from {e} was listed at {v} before the company changed suppliers.",
         ["$595", "$720", "$649", "$780", "$615", "$699"], ["Loomis & Hartley", "Lomas & Hart"],
         "loomis-hart-catalogue",
         ["Loomis & Hart makes office furniture in a workshop outside Grand Rapids."]),
    Fact("lookup-18", "How long does the battery of the Cirrus headphones from Varrick Audio last?",
         ["32 hours", "32 hrs"], "Varrick Audio", "32 hours",
         "The Cirrus wireless headphones from {e} weigh 250 grams. Their battery lasts {v} with noise "
         "cancelling switched on, and a ten-minute charge adds about three hours.",
         "The original Cirrus headphones from {e} had a battery life of {v}, which was later improved.",
         ["24 hours", "40 hours", "28 hours", "36 hours", "20 hours", "45 hours"],
         ["Varrick Acoustics", "Warrick Audio"], "varrick-spec",
         ["Varrick Audio designs its headphones in Tallinn and sells them in 25 countries."]),
    Fact("lookup-19", "Who is the external auditor of Greenmere Water?", ["Prescott Ainsley"],
         "Greenmere Water", "Prescott Ainsley LLP",
         "{e} supplies drinking water to about 180,000 homes in the river valley. Its external auditor is "
         "{v}, which also reviews its annual filing to the state regulator.",
         "{v} was the external auditor of {e} until it was replaced after a tender in 2022.",
         ["Tolliver Grant LLP", "Hargreave & Moss LLP", "Okonkwo Ridley LLP", "Castlemain Price LLP",
          "Dunleavy Shaw & Co."], ["Greenmere Water Services", "Greenmoor Water"], "greenmere-annual-report",
         ["Greenmere Water maintains 2,300 kilometres of pipes and four treatment plants."]),
    Fact("lookup-20", "What is the ticker symbol of Kelso Ridge Minerals?", ["KRGM"],
         "Kelso Ridge Minerals", "KRGM",
         "{e} mines copper and zinc in northern Chile. Its shares are listed under the ticker symbol {v}, "
         "and more than half of them are held by pension funds.",
         "{e} was listed under the ticker symbol {v} until it moved its shares to another exchange in 2018.",
         ["KRMN", "KLSR", "KRGX", "KSRM", "KRDG"], ["Kelso Ridge Mining", "Kelsey Ridge Minerals"],
         "kelso-ridge-investors", ["Kelso Ridge Minerals produced 41,000 tonnes of copper last year."]),
    Fact("lookup-21", "Which company owns Dovecote Dairies?", ["Harlan Provisions"],
         "Dovecote Dairies", "Harlan Provisions Group",
         "{e} makes yoghurt and soft cheese from milk bought from 140 family farms. The company is a "
         "wholly owned subsidiary of {v}, which bought it in 2016.",
         "{e} was owned by {v} until a management buyout in 2011.",
         ["Merriman Foods Group", "Birchall & Finch Holdings", "Northcape Provisions", "Sterling Vale Foods",
          "Tremlett Holdings"], ["Dovecote Dairy Farms", "Dovecot Dairies"], "dovecote-profile",
         ["Dovecote Dairies sells its yoghurt in glass jars that customers can return."]),
    Fact("lookup-22", "What is the maximum payload of the Skua drone from Fernlea Aeronautics?",
         ["4.5 kilograms", "4.5 kg"], "Fernlea Aeronautics", "4.5 kilograms",
         "The Skua survey drone from {e} has a wingspan of 2.1 metres. Its maximum payload is {v}, which "
         "is enough for a mapping camera and a spare battery.",
         "The first version of the Skua drone from {e} had a maximum payload of {v}, which ruled out "
         "heavier cameras.",
         ["3 kilograms", "6 kilograms", "3.5 kilograms", "5.5 kilograms", "2.5 kilograms", "7 kilograms"],
         ["Fernlea Aviation", "Fernleigh Aeronautics"], "fernlea-spec",
         ["Fernlea Aeronautics builds its drones in a former aircraft hangar near Cork."]),
]


def _build(facts: list[Fact], rng) -> list[dict]:
    """One item per fact: the gold chunk plus one harmless background chunk, in a seeded order."""
    items = []
    for f in facts:
        chunks = [chunk("c1", f.gold_text, f.source)] + [chunk(f"c{i + 2}", t, f.source)
                                                         for i, t in enumerate(f.background)]
        order = chunks[:]
        rng.shuffle(order)
        items.append(fact_item(f, "lookup", order, "c1"))
    return items


def build(rng) -> list[dict]:
    """The first batch, lookup-01 .. lookup-12."""
    return _build(FACTS, rng)


def build_more(rng) -> list[dict]:
    """The second batch, lookup-13 .. lookup-22, built the same way."""
    return _build(MORE_FACTS, rng)
